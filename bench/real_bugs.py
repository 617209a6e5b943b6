"""Real bugs from real projects, each built at run time from consecutive PyPI releases (bench/real_bugs/cases.json:
the buggy release's sdist, the upstream fix of one function, the upstream regression test).

    .venv/bin/python bench/real_bugs.py                     # replay: the upstream fix played as the model's turns
    .venv/bin/python bench/real_bugs.py --live --model gpt-4.1-mini   # a real model (OPENAI_BASE_URL, OPENAI_API_KEY)
    options: --case <id> (repeatable), --json results.json, --cache DIR

Each case is one incident run through the whole pipeline in this process (`remediate.pipeline.Run`), dry-run
(nothing is pushed), with the real incident MCP server serving the regression test's real traceback as the
incident's logs, the suspect file and function in the payload, and the project's own pytest suite.

Replay measures everything but the model: whether the faulting line the traceback names is in the first
prompt, the first prompt's tokens, whether the upstream regression test's file was selected, the pytest time
the run spent against its selected tests' single run and against the full suite, the regression proof's
verdict, and the wall time. Live gives the model the same incident: the fix rate (the run ends `fixed` and the
upstream regression test, applied afterwards, passes on the delivered change), its cost, calls and time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = os.path.join(os.path.realpath(sys.prefix), "bin") + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("REMEDIATE_SANDBOX_UID", str(60_000 + os.getpid() % 1000 * 8))

sys.path.insert(0, str(ROOT / "bench" / "real_bugs"))
from timing import busy  # noqa: E402  (bench/, the script's folder)
from verify_cases import case_python, fetch_sdist  # noqa: E402
from verify_cases import unpack as unpack_sdist  # noqa: E402

from peers.harness import GIT_ENV, git, reachable_folder, start_mcp  # noqa: E402
from peers.inprocess import ScriptedModel  # noqa: E402
from remediate.actions import Runner  # noqa: E402
from remediate.mcp.client import McpHub  # noqa: E402
from remediate.pipeline import Edges, Run, RunRequest, finish  # noqa: E402

CASES = ROOT / "bench" / "real_bugs" / "cases.json"
# Where sdists and the cases' test venvs are kept: a folder the sandbox user can enter, since it runs their python.
CACHE = Path(tempfile.gettempdir()) / "remediate-bench-cache"
MCP_TOKEN = "bench-mcp-token-0123456789"
CONFIG = """llm: {{model: {model}, api_key_env: OPENAI_API_KEY}}
mcp:
  servers:
    - name: incidents
      url: {mcp_url}
      auth: {{type: bearer, token_env: INCIDENT_MCP_TOKEN}}
      prefetch: [get_incident_logs]
guardrails:
  max_files_modified: 3
  max_lines_changed: 400
tests:
  command: [python, -m, pytest, -p, no:cacheprovider{pytest_args}]
  timeout_seconds: 600
costs: {{budget_usd: {budget}}}
"""


def repository(case: dict[str, Any], base: Path, cache: Path) -> tuple[Path, Path]:
    """The buggy release as a checkout (one commit) with a bare origin, as actions/checkout leaves it."""
    (base / "unpacked").mkdir()
    tree = unpack_sdist(fetch_sdist(cache, case["project"], case["buggy_version"]), base / "unpacked")
    for name in (".git", ".github"):
        shutil.rmtree(tree / name, ignore_errors=True)
    safe = ("-c", "safe.directory=*")  # the unpacked files keep the archive's owner
    git(tree, *safe, "init", "-q", "-b", "main")
    git(tree, *safe, "add", "-A", "-f")
    git(tree, *safe, "commit", "-q", "-m", f"{case['project']} {case['buggy_version']}")
    origin = base / "origin.git"
    git(base, "clone", "-q", "--bare", str(tree), str(origin))
    workspace = base / "workspace"
    git(base, "clone", "-q", str(origin), str(workspace))
    return workspace, origin


def replay_script(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The upstream fix as the model's turns: read the file, the fix, the regression test, the tests, finish."""
    return [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": case["source_file"]}}]},
        {"tool_calls": [{"name": "apply_patch", "arguments": {"patch": case["fix_patch"]}},
                        {"name": "apply_patch", "arguments": {"patch": case["test_patch"]}}]},
        {"tool_calls": [{"name": "run_tests", "arguments": {}}]},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": f"Upstream fix of {case['function']} "
                                                                    f"({case['fixed_version']})."}}]},
    ]


def faulting_line(case: dict[str, Any]) -> int | None:
    """The line of the traceback's deepest frame in the source file."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', case["traceback"])
    for path, line in reversed(frames):
        if path.endswith(case["source_file"]) or case["source_file"].endswith(path.lstrip("./")):
            return int(line)
    return None


def test_env(case: dict[str, Any], python: Path) -> dict[str, str]:
    """What the case's tests need: its venv's python first on PATH, its package on PYTHONPATH (relative: tests run
    on a copy of the tree), UTC, a UTF-8 locale."""
    return {"PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": case.get("package_root", "."),
            "TZ": "UTC", "LC_ALL": "C.UTF-8"}


def full_suite_seconds(workspace: Path, case: dict[str, Any], python: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *case.get("pytest_args", []),
                    *case.get("suite", [])], cwd=workspace, env={**os.environ, **test_env(case, python)},
                   capture_output=True, timeout=1800)
    return time.perf_counter() - started


def one(case: dict[str, Any], scratch: Path, cache: Path, live: bool, model_name: str) -> dict[str, Any]:
    base = scratch / case["id"]
    base.mkdir()
    workspace, _ = repository(case, base, cache)
    python = case_python(cache, sys.executable, case.get("deps", []))
    full = full_suite_seconds(workspace, case, python)
    logs = (f"2026-11-30T03:14:07.000Z ERROR {case['project']} worker crashed: {case['summary']}\n"
            + case["traceback"].rstrip() + "\n")
    (base / "mcp").mkdir()
    mcp = start_mcp(base / "mcp", logs, {"incident_id": case["id"], "summary": case["summary"]}, token=MCP_TOKEN)
    try:
        args = "".join(f", {json.dumps(a)}" for a in case.get("pytest_args", []))
        (workspace / ".remediate.yaml").write_text(CONFIG.format(
            model=model_name, mcp_url=mcp.url, pytest_args=args, budget=1.00))
        git(workspace, "add", ".remediate.yaml")
        git(workspace, "commit", "-q", "-m", "remediate config")
        payload = {"incident_id": case["id"], "summary": case["summary"], "service": case["project"],
                   "suspect": {"files": [case["source_file"]], "functions": [case["function"]]}}
        env = {"HOME": str(base / "home"), "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(base / "temp"),
               "GIT_CONFIG_GLOBAL": "/dev/null", "INCIDENT_MCP_TOKEN": MCP_TOKEN,
               "REMEDIATE_SANDBOX_UID": os.environ["REMEDIATE_SANDBOX_UID"], **GIT_ENV, **test_env(case, python)}
        for folder in ("home", "temp"):
            (base / folder).mkdir()
        scripted = None
        if live:
            env.update(OPENAI_API_KEY=os.environ["OPENAI_API_KEY"], OPENAI_BASE_URL=os.environ["OPENAI_BASE_URL"])
            edges = Edges(mcp=lambda servers, environ, telemetry: McpHub(list(servers), environ))
        else:
            scripted = ScriptedModel(replay_script(case))
            env["OPENAI_API_KEY"] = "sk-bench-replay-0000000000000000"
            edges = Edges(chat=lambda *_: scripted, mcp=lambda servers, environ, telemetry: McpHub(list(servers),
                                                                                                      environ))
        event = {"action": "incident", "client_payload": payload}
        run = Run(RunRequest(workspace, env, {"dry-run": "true"}, "repository_dispatch", event),
                  Runner(env, open(os.devnull, "w")), edges)  # noqa: SIM115
        started = time.perf_counter()
        run.execute()
        wall = time.perf_counter() - started
        finish(run, base / "report.json")
    finally:
        mcp.stop()
    report = json.loads((base / "report.json").read_text())
    row = measure(case, report, scripted, wall, full, workspace, live)
    if live:
        row["fixed"] = report["outcome"] == "fixed" and upstream_test_passes(case, report, base, cache, python)
    return row


def upstream_test_passes(case: dict[str, Any], report: dict[str, Any], base: Path, cache: Path,
                         python: Path) -> bool:
    """The model's change on a fresh copy of the buggy release, then the upstream regression test: does it pass?"""
    (base / "check").mkdir()
    tree = unpack_sdist(fetch_sdist(cache, case["project"], case["buggy_version"]), base / "check")
    diff = report.get("diff") or ""
    applied = subprocess.run(["patch", "-p1", "--quiet", "--forward", "--no-backup-if-mismatch"], cwd=tree,
                             input=diff, text=True, capture_output=True)
    if applied.returncode != 0:
        return False
    subprocess.run(["patch", "-p1", "--quiet", "--forward", "--no-backup-if-mismatch"], cwd=tree,
                   input=case["test_patch"], text=True, capture_output=True)  # a test the model added may clash
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *case.get("pytest_args", []), *case["regression_tests"]], cwd=tree,
                          env={**os.environ, **test_env(case, python)}, capture_output=True, timeout=600)
    return done.returncode == 0


def covered(test: str, selected: list[str]) -> bool:
    """Whether a selection runs a node id: its folder, its file, its class, itself (all its parametrizations)."""
    return any(test == s or test.startswith((s.rstrip("/") + "/", s + "::", s + "[")) for s in selected)


def measure(case: dict[str, Any], report: dict[str, Any], scripted: ScriptedModel | None, wall: float,
            full: float, workspace: Path, live: bool) -> dict[str, Any]:
    first_prompt = ""
    if scripted is not None and scripted.requests:
        first_prompt = scripted.requests[0][1]["content"]
    fault = faulting_line(case)
    source = git(workspace, "show", f"HEAD:{case['source_file']}").splitlines()  # the buggy code, as committed
    fault_shown = None
    if fault and first_prompt:
        fault_shown = fault <= len(source) and f"{fault:>5}\t{source[fault - 1]}" in first_prompt
    tests = report.get("tests") or {}
    runs = [r for r in report.get("test_runs", []) if not r.get("reused")]
    spent = busy(runs)  # runs beside each other count once
    final = next((r for r in reversed(report.get("test_runs", [])) if r.get("purpose", "").startswith("final")),
                 None)
    single = (final or {}).get("duration_s") or tests.get("duration_s") or 0.0
    selected = tests.get("selected") or []
    row = {"id": case["id"], "outcome": report["outcome"], "reason": report["reason"],
           "fault_in_first_prompt": fault_shown,
           "first_prompt_tokens": (report.get("context", {}).get("first_prompt_tokens") or {}).get("total"),
           # an empty selection is the whole suite, which holds the regression test too
           "regression_test_selected": not selected or all(covered(t, selected) for t in case["regression_tests"]),
           "selected_files": len(selected),
           "pytest_s": round(spent, 2), "pytest_sum_s": round(sum(r.get("duration_s") or 0.0 for r in runs), 2),
           "selected_single_s": round(single, 2), "full_suite_s": round(full, 2),
           "proof": (tests.get("regression_proof") or {}).get("verdict"), "wall_s": round(wall, 2),
           "cost_usd": report["llm"]["cost_usd"], "llm_calls": report["llm"]["calls"],
           "runs": [{k: r.get(k) for k in ("purpose", "started_s", "duration_s", "reused", "status", "failed")}
                    for r in report.get("test_runs", [])]}
    return row


def table(rows: list[dict[str, Any]], live: bool) -> str:
    def yes(value: Any) -> str:
        return "yes" if value else ("n/a" if value is None else "**no**")
    lines = ["| case | outcome | fault in 1st prompt | 1st prompt tokens | regression test selected | pytest s "
             "(action) | selected once s | full suite s | proof | wall s |", "|---" * 10 + "|"]
    if live:
        lines = ["| case | outcome | reason | upstream test passes | cost USD | LLM calls | wall s |",
                 "|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['id']} | {r['outcome']} | {r['reason']} | {yes(r.get('fixed'))} | {r['cost_usd']:.4f} "
                         f"| {r['llm_calls']} | {r['wall_s']} |")
        return "\n".join(lines)
    for r in rows:
        lines.append(f"| {r['id']} | {r['outcome']} | {yes(r['fault_in_first_prompt'])} | {r['first_prompt_tokens']} "
                     f"| {yes(r['regression_test_selected'])} | {r['pytest_s']} | {r['selected_single_s']} | "
                     f"{r['full_suite_s']} | {r['proof']} | {r['wall_s']} |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]], live: bool) -> str:
    n = len(rows)
    if live:
        fixed = sum(1 for r in rows if r.get("fixed"))
        return (f"fixed {fixed}/{n} (the run ended fixed and the upstream regression test passes on its change); "
                f"cost per incident {statistics.mean(r['cost_usd'] for r in rows):.4f} USD; "
                f"LLM calls {statistics.mean(r['llm_calls'] for r in rows):.1f}; "
                f"time {statistics.mean(r['wall_s'] for r in rows):.1f} s")
    shown = sum(1 for r in rows if r["fault_in_first_prompt"])
    located = sum(1 for r in rows if r["fault_in_first_prompt"] is not None)
    selected = sum(1 for r in rows if r["regression_test_selected"])
    tokens = [r["first_prompt_tokens"] or 0 for r in rows]
    ratios = [r["pytest_s"] / r["selected_single_s"] for r in rows if r["selected_single_s"]]
    shares = [r["pytest_s"] / r["full_suite_s"] for r in rows if r["full_suite_s"]]
    proven = sum(1 for r in rows if r["proof"] == "fails_before_passes_after")
    return (f"faulting line in the first prompt: {shown}/{located} (the other {n - located} tracebacks name no "
            f"line of the fixed file: the test's assertion fails); "
            f"first prompt tokens: mean {statistics.mean(tokens):.0f}, "
            f"max {max(tokens)}; regression test selected: {selected}/{n}; pytest as the action runs: "
            f"{statistics.mean(ratios):.2f}x the selected tests' single run (mean), "
            f"{100 * statistics.mean(shares):.0f}% of the full suite (mean); proof fails-before-passes-after: "
            f"{proven}/{n}; fixed: {sum(1 for r in rows if r['outcome'] == 'fixed')}/{n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live", action="store_true", help="a real model at OPENAI_BASE_URL (with OPENAI_API_KEY)")
    parser.add_argument("--model", default="openai/gpt-4.1-mini", help="with --live: llm.model")
    parser.add_argument("--case", action="append", default=[], help="only these case ids")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--cache", default=str(CACHE))
    args = parser.parse_args()
    if args.live and not (os.environ.get("OPENAI_BASE_URL") and os.environ.get("OPENAI_API_KEY")):
        raise SystemExit("--live needs OPENAI_BASE_URL and OPENAI_API_KEY (any OpenAI-compatible endpoint)")
    cases = json.loads(CASES.read_text())
    if args.case:
        cases = [c for c in cases if c["id"] in args.case]
    rows = []
    with reachable_folder("remediate-bugs-") as scratch:
        for case in cases:
            with tempfile.TemporaryDirectory(dir=scratch) as folder:
                os.chmod(folder, 0o755)
                row = one(case, Path(folder), Path(args.cache), args.live, args.model)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(table(rows, args.live))
    print()
    print(summary(rows, args.live))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
