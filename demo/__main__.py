"""An incident end to end, offline: `python -m demo` (scripts/demo sets up the environment first).

A sample service with a real memory leak and its tests, an MCP incident server (official SDK),
a bare git origin, a GitHub API stand-in, and a recorded model; then the action's entrypoint runs
exactly as the GitHub runner would start it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The action runs the sample service's tests as the sandbox user with `python` from PATH: this interpreter (which
# that user can start; scripts/setup sees to it), not whatever else PATH finds first.
os.environ["PATH"] = os.path.join(os.path.realpath(sys.prefix), "bin") + os.pathsep + os.environ.get("PATH", "")

from peers import events, scenarios  # noqa: E402
from peers.github_stub import GitHubStub  # noqa: E402
from peers.harness import make_sample_repo, run_action, start_mcp  # noqa: E402
from peers.openai_stub import ScriptedLLM  # noqa: E402


def main() -> int:
    keep = ROOT / ".demo"
    keep.mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="run-", dir=keep))
    real_endpoint = os.environ.get("OPENAI_BASE_URL") and os.environ.get("OPENAI_API_KEY")
    llm = None
    if real_endpoint:
        print(f"model: the OpenAI-compatible endpoint at {os.environ['OPENAI_BASE_URL']} (from OPENAI_BASE_URL)")
        llm_env = {"OPENAI_BASE_URL": os.environ["OPENAI_BASE_URL"], "OPENAI_API_KEY": os.environ["OPENAI_API_KEY"]}
    else:
        llm = ScriptedLLM(scenarios.good_fix()).start()
        print("model: a recorded script served by a local OpenAI-compatible stub "
              "(set OPENAI_BASE_URL and OPENAI_API_KEY to use a real endpoint)")
        llm_env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": llm.api_key}
    github = GitHubStub().start()
    mcp = None
    try:
        probe = make_sample_repo(base / "probe")
        mcp = start_mcp(base, scenarios.incident_logs(), scenarios.payload(probe.bug_commit))
        repo = make_sample_repo(base / "run", scenarios.config_yaml(mcp.url))
        event = events.repository_dispatch(scenarios.payload(repo.bug_commit))
        print(f"incident: {event['client_payload']['summary']}")
        print(f"workspace: {repo.workspace} (origin {repo.origin})")
        result = run_action(base / "run", repo.workspace, "repository_dispatch", event,
                            {"github-token": github.token},
                            {**llm_env, "INCIDENT_MCP_TOKEN": mcp.token, "GITHUB_API_URL": github.api_url,
                             "GITHUB_REPOSITORY": f"{github.owner}/{github.repo}", "GITHUB_ACTIONS": "false"},
                            timeout=600)
    finally:
        if mcp:
            mcp.stop()
        if llm:
            llm.stop()
        github.stop()
    print("\n--- action output ---")
    print(result.stdout.rstrip())
    if result.stderr.strip():
        print(result.stderr.rstrip()[-2000:])
    print("\n--- result ---")
    print(f"outcome: {result.outputs.get('outcome')} (exit code {result.exit_code})")
    for pr in github.pulls:
        labels = ", ".join(label["name"] for label in pr["labels"])
        print(f"pull request #{pr['number']} in the GitHub stand-in: {pr['title']}")
        print(f"  {pr['head']['ref']} -> {pr['base']['ref']}, labels: {labels}")
        print(f"  pushed to origin: {', '.join(repo.remote_branches())}")
    for issue in github.issues:
        if not issue.get("_pr"):
            print(f"escalation issue #{issue['number']}: {issue['title']}")
    print(f"trace id: {result.outputs.get('trace-id')}")
    print(f"cost: ${float(result.outputs.get('cost-usd') or 0):.4f} in {result.outputs.get('llm-calls')} LLM calls")
    print(f"report: {result.outputs.get('report-path')}")
    summary_path = base / "run" / "_runner_file_commands" / "step_summary"
    print(f"step summary (Markdown): {summary_path}")
    if github.pulls:
        body_path = base / "pr-body.md"
        body_path.write_text(github.pulls[0]["body"] or "")
        print(f"PR body (Markdown): {body_path}")
    if github.violations:
        print("GitHub API shape violations:\n  " + "\n  ".join(github.violations))
    print(json.dumps({"outcome": result.outputs.get("outcome"), "pr": [p["html_url"] for p in github.pulls]}))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
