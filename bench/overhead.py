"""Orchestration overhead: the demo incident end to end with an instant model, and how much of the wall time is
remediate's own (everything but the time pytest runs the sample service's tests).

    .venv/bin/python bench/overhead.py [--runs 5]

Each run starts the container's entrypoint as a child process, as the runner does, against the demo's peers
(the incident MCP server, the GitHub stand-in, a bare origin, a scripted model that answers at once). Reported:
wall time of the child process, the time the report's test runs took (`test_runs[]`, the tests' own
processes; runs side by side count once), the difference (the overhead), and the report's per-stage timings,
as medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = os.path.join(os.path.realpath(sys.prefix), "bin") + os.pathsep + os.environ.get("PATH", "")

from timing import busy  # noqa: E402  (bench/, the script's folder)

from peers import events, scenarios  # noqa: E402
from peers.github_stub import GitHubStub  # noqa: E402
from peers.harness import make_sample_repo, run_action, start_mcp  # noqa: E402
from peers.openai_stub import ScriptedLLM  # noqa: E402


def one_run(base: Path, mcp_url: str, mcp_token: str, github: GitHubStub) -> dict[str, float]:
    llm = ScriptedLLM(scenarios.good_fix()).start()
    try:
        repo = make_sample_repo(base, scenarios.config_yaml(mcp_url))
        event = events.repository_dispatch(scenarios.payload(repo.bug_commit))
        started = time.perf_counter()
        done = run_action(base, repo.workspace, "repository_dispatch", event, {"github-token": github.token},
                          {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": llm.api_key,
                           "INCIDENT_MCP_TOKEN": mcp_token, "GITHUB_API_URL": github.api_url,
                           "GITHUB_REPOSITORY": f"{github.owner}/{github.repo}"})
        wall = time.perf_counter() - started
    finally:
        llm.stop()
    report = done.report or {}
    if report.get("outcome") != "fixed":
        raise SystemExit(f"the demo incident did not end fixed: {report.get('outcome')} {report.get('reason')}\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    tests = busy([run for run in report.get("test_runs", []) if not run.get("reused")])
    return {"wall": wall, "tests": tests, "overhead": wall - tests,
            **{f"stage {k}": v for k, v in report.get("timings", {}).items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="remediate-overhead-") as scratch:
        base = Path(scratch)
        mcp = start_mcp(base, scenarios.incident_logs(), {"incident_id": scenarios.INCIDENT_ID, "summary": "leak"})
        github = GitHubStub().start()
        try:
            rows = [one_run(base / f"run{i}", mcp.url, mcp.token, github) for i in range(args.runs + 1)][1:]
        finally:
            github.stop()
            mcp.stop()
    print(f"demo incident, instant model, {args.runs} runs after one warm-up (medians):")
    for key in rows[0]:
        values = [row.get(key, 0.0) for row in rows]
        print(f"  {key:<18} {statistics.median(values):6.2f} s   (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
