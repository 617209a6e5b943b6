"""Command line: `python -m remediate run ...` in a checkout, and `action` for the container."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from remediate.actions import Runner, read_inputs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediate", description="Turn a diagnosed incident into a hotfix PR.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="remediate one incident in a local checkout")
    run.add_argument("--incident-id", help="the incident id (required unless --event-file has it)")
    run.add_argument("--summary", help="the diagnosis, e.g. 'memory leak in UserService.process_queue()'")
    run.add_argument("--suspect-file", action="append", default=[], help="a file the diagnosis implicates")
    run.add_argument("--suspect-function", action="append", default=[], help="a function, e.g. Class.method")
    run.add_argument("--suspect-commit", help="the commit that introduced the fault")
    run.add_argument("--repo", default=".", help="the checkout (default: the current folder)")
    run.add_argument("--config", help="config file relative to the repo (default: .remediate.yaml, .architect.yaml)")
    run.add_argument("--model", help="override llm.model")
    run.add_argument("--budget-usd", help="override costs.budget_usd")
    run.add_argument("--base-branch", help="base branch of the PR")
    run.add_argument("--dry-run", action="store_true", help="make and test the fix, push nothing")
    run.add_argument("--report-file", help="where to write the JSON report")
    run.add_argument("--event-file", help="a GitHub event JSON (repository_dispatch or workflow_dispatch)")
    run.add_argument("--event-name", default=None, help="the event's name (default: from --event-file shape)")
    sub.add_parser("action", help="run as the GitHub Action (reads INPUT_* and GITHUB_* variables)")
    cmap = sub.add_parser("coverage-map", help="turn per-test coverage (pytest --cov --cov-context=test) into the "
                                               "map tests.coverage_map reads")
    cmap.add_argument("--data", default=".coverage", help="the coverage data file (default: .coverage)")
    cmap.add_argument("--repo", default=".", help="the checkout the data was recorded in (default: here)")
    cmap.add_argument("--out", default=".remediate/coverage-map.json", help="where to write the map")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = dict(os.environ if environ is None else environ)
    if args.command == "action":
        return run_action(environ)
    if args.command == "coverage-map":
        return write_coverage_map(Path(args.data), Path(args.repo), Path(args.out))
    inputs = {k: v for k, v in {
        "incident-id": args.incident_id, "summary": args.summary, "config": args.config, "model": args.model,
        "budget-usd": args.budget_usd, "base-branch": args.base_branch, "dry-run": "true" if args.dry_run else "",
        "report-file": args.report_file, "suspect-files": ",".join(args.suspect_file),
        "suspect-functions": ",".join(args.suspect_function), "suspect-commit": args.suspect_commit,
    }.items() if v}
    event, event_name = {}, "cli"
    if args.event_file:
        event = _load_event(args.event_file)
        event_name = args.event_name or ("repository_dispatch" if "client_payload" in event else "workflow_dispatch")
    return _run(Path(args.repo), environ, inputs, event_name, event)


def write_coverage_map(data: Path, repo: Path, out: Path) -> int:
    import subprocess

    from remediate.verify.coverage_map import build_map

    if not data.is_file():
        print(f"error: --data: {data} not found (run pytest --cov=<package> --cov-context=test first)",
              file=sys.stderr)
        return 1
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    built = build_map(data, repo, head.stdout.strip() if head.returncode == 0 else None)
    if not any(f["functions"] for f in built["files"].values()):
        print(f"error: --data: {data} has no per-test contexts (record with --cov-context=test)", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(built, separators=(",", ":")) + "\n", encoding="utf-8")
    tests = {t for f in built["files"].values() for ts in f["functions"].values() for t in ts}
    print(f"{out}: {len(built['files'])} files, {len(tests)} tests, commit {built['commit'] or 'unknown'}")
    return 0


def run_action(environ: Mapping[str, str]) -> int:
    inputs = read_inputs(environ)
    repo = Path(environ.get("GITHUB_WORKSPACE") or ".")
    command = inputs.get("command", "remediate")
    if command == "coverage-map":
        return write_coverage_map(repo / ".coverage", repo, repo / _coverage_map_path(repo, inputs.get("config")))
    if command not in ("remediate", "propose", "deliver"):
        print(f"::error::command: expected remediate, propose, deliver or coverage-map, got {command!r}")
        return 1
    event_name = environ.get("GITHUB_EVENT_NAME", "")
    event: dict[str, Any] = {}
    if environ.get("GITHUB_EVENT_PATH"):
        event = _load_event(environ["GITHUB_EVENT_PATH"])
    return _run(repo, environ, inputs, event_name, event)


def _coverage_map_path(repo: Path, config_file: str | None) -> str:
    from remediate.config import load_config
    from remediate.errors import UserError

    try:
        return load_config(repo, config_file).tests.coverage_map or ".remediate/coverage-map.json"
    except UserError:
        return ".remediate/coverage-map.json"


def _load_event(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        # The pipeline turns a missing incident into the one-line error; keep the cause visible.
        print(f"warning: could not read the event file {path}: {exc}", file=sys.stderr)
        return {}
    return data if isinstance(data, dict) else {}


# What a run imports late (the MCP SDK when it connects, the OpenAI client at the first model call, PyGithub at
# delivery): imported in a thread from the start, they load while the run waits on git, the sandbox and the
# network instead of after.
PRELOAD = ("mcp.client.session", "mcp.client.streamable_http", "openai", "github")


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:
            return


def _run(repo: Path, environ: Mapping[str, str], inputs: Mapping[str, str], event_name: str,
         event: Mapping[str, Any]) -> int:
    import threading

    # pydantic looks for plugins in every installed distribution's entry points the first time it builds a
    # model (0.4 s, and code of any installed package run in ours); we use none. This process only: the
    # sandbox's environment is built from `environ`.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    threading.Thread(target=_preload, name="preload", daemon=True).start()
    from remediate.pipeline import Run, RunRequest, finish

    run = Run(RunRequest(repo, environ, inputs, event_name, event), Runner(environ))
    run.execute()
    report_file = inputs.get("report-file")
    return finish(run, Path(report_file) if report_file else None)
