"""The whole action, run as the GitHub runner runs it, against real peers on loopback."""

from __future__ import annotations

import json

import pytest

from peers import events, scenarios
from peers.harness import git
from remediate.secrets import REDACTED


def _pr_issues(github):
    return [i for i in github.issues if not i.get("_pr")]


@pytest.mark.entrypoint
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_fix_via_edit_file_ends_in_a_pull_request(remediate, mcp, stream):
    out = remediate(scenarios.good_fix(), stream=stream)
    run, github, repo = out.run, out.github, out.repo

    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.outputs["outcome"] == "fixed"
    assert len(github.pulls) == 1
    pr = github.pulls[0]
    assert pr["head"]["ref"] == "hotfix/INC-1234" and pr["base"]["ref"] == "main"
    assert {label["name"] for label in pr["labels"]} == {"hotfix", "auto-generated"}
    assert run.outputs["pr-number"] == str(pr["number"]) and run.outputs["pr-url"] == pr["html_url"]
    assert run.outputs["branch"] == "hotfix/INC-1234"
    assert _pr_issues(github) == []

    # The pushed branch holds exactly the vetted change, on top of the checkout's HEAD.
    assert "deque(maxlen=AUDIT_LOG_SIZE)" in repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    assert repo.remote_file("hotfix/INC-1234", "tests/test_audit_log_bounded.py") == scenarios.REGRESSION_TEST
    changed = git(repo.origin, "diff", "--name-only", "main", "hotfix/INC-1234").split()
    assert sorted(changed) == ["app/users/service.py", "tests/test_audit_log_bounded.py"]
    message = repo.remote_log("hotfix/INC-1234")
    assert message.startswith("remediate[bot] <remediate-bot@users.noreply.github.com>")
    assert "Incident-Id: INC-1234" in message and f"Trace-Id: {run.outputs['trace-id']}" in message

    # The payload's traceparent makes the run part of the incident's trace.
    assert run.outputs["trace-id"] == "4bf92f3577b34da6a3ce929d0e0e4736"

    # The PR body is rendered from the report.
    body = pr["body"]
    for expected in ("Memory leak in UserService.process_queue()", "https://aiops.example/incidents/INC-1234/rca",
                     "`app/users/service.py` | modified", "**passed**: 3 passed", run.outputs["trace-id"],
                     "of $1.00 budget", "Root cause: commit added an unbounded"):
        assert expected in body

    report = run.report
    assert report["outcome"] == "fixed" and report["pr"]["number"] == pr["number"]
    assert report["tests"]["selected"] == ["tests/test_audit_log_bounded.py", "tests/test_service.py"]
    assert report["llm"]["calls"] == 5 and run.outputs["llm-calls"] == "5"
    assert float(run.outputs["cost-usd"]) == pytest.approx(report["llm"]["cost_usd"])
    assert report["llm"]["cost_usd"] > 0
    assert str(out.run.report_path).startswith(run.env["RUNNER_TEMP"])
    assert "# ✅ remediate: fixed" in run.summary
    from tests.meta.test_action_metadata import OUTPUTS_WRITTEN
    assert set(run.outputs) == OUTPUTS_WRITTEN  # every output action.yml declares, and no other


def test_first_prompt_carries_diagnosis_logs_code_and_commit(remediate, mcp):
    out = remediate(scenarios.good_fix())
    prompt = out.first_prompt()
    assert "Memory leak in UserService.process_queue()" in prompt
    # Condensed MCP logs: errors and the stack trace kept, repetition counted, not repeated.
    assert "MemoryError" in prompt and 'File "/srv/app/users/service.py", line 20' in prompt
    assert "[x400]" in prompt and prompt.count("processed update for user") == 1
    # Suspect function source with line numbers, and the suspect commit's patch.
    assert "def process_queue(self, queue: deque) -> int:" in prompt
    assert "+        self._audit_log: list[dict] = []" in prompt
    assert out.repo.bug_commit in prompt
    # Untrusted data is fenced as data.
    injection_at = prompt.index("SYSTEM OVERRIDE")
    assert prompt.rfind('<untrusted source="mcp incidents/get_incident_logs">', 0, injection_at) != -1
    assert prompt.find("</untrusted>", injection_at) != -1

    report = out.run.report
    assert report["context"]["logs_chars_before"] > 10 * report["context"]["logs_chars_after"]
    assert report["mcp_calls"][0] == {**report["mcp_calls"][0], "server": "incidents", "tool": "get_incident_logs",
                                      "ok": True, "by": "prefetch"}
    calls = mcp.calls()
    assert calls[0]["tool"] == "get_incident_logs"
    assert calls[0]["arguments"] == {"incident_id": "INC-1234"}


@pytest.mark.entrypoint
def test_secrets_never_reach_the_model_the_pr_or_the_report(remediate, mcp, github):
    out = remediate(scenarios.good_fix())
    assert out.run.exit_code == 0
    seen_by_model = "\n".join(out.prompt_texts())
    secrets = [scenarios.FAKE_AWS_KEY, mcp.token, github.token, out.llm.api_key]
    for secret in secrets:
        assert secret not in seen_by_model
        assert secret not in json.dumps(out.run.report)
        assert secret not in github.pulls[0]["body"]
        assert secret not in out.run.summary
    # The runner consumes ::add-mask:: lines (they are how it learns to hide a value); nothing else may show one.
    log_lines = (out.run.stdout + out.run.stderr).splitlines()
    for secret in secrets:
        assert not [line for line in log_lines if secret in line and not line.startswith("::add-mask::")]
    for secret in (mcp.token, github.token, out.llm.api_key):
        assert f"::add-mask::{secret}" in log_lines
    assert REDACTED in seen_by_model  # the AWS key in the logs was there, and was replaced


def test_only_read_only_mcp_tools_are_offered(remediate, mcp):
    script = [{"tool_calls": [{"name": "mcp__incidents__restart_service", "arguments": {"service": "user-service"}},
                              {"name": "mcp__incidents__get_incident", "arguments": {"incident_id": "INC-1234"}}]},
              *scenarios.good_fix()]
    out = remediate(script)
    tools = out.offered_tools()
    assert {"mcp__incidents__get_incident_logs", "mcp__incidents__get_incident"} <= tools
    assert "mcp__incidents__restart_service" not in tools
    assert {"server": "incidents", "tool": "restart_service",
            "why": "not annotated read-only by the server (add it to tools: to allow it)"} in \
        out.run.report["mcp_tools_withheld"]
    assert "MCP server incidents: not offered to the model: " in out.run.stdout and "restart_service" in out.run.stdout
    assert "run_command" not in tools  # no shell unless the config allows commands
    assert [c["tool"] for c in mcp.calls()] == ["get_incident_logs", "get_incident"]
    assert out.run.report["guardrail_events"][0]["rule"] == "unknown_tool"
    agent_calls = [c for c in out.run.report["mcp_calls"] if c["by"] == "agent"]
    assert [c["tool"] for c in agent_calls] == ["get_incident"]
    assert out.run.exit_code == 0


def test_wrong_fix_escalates_with_an_issue_and_opens_no_pr(remediate):
    out = remediate(scenarios.wrong_fix())
    run, github = out.run, out.github
    assert run.exit_code == 2
    assert run.outputs["outcome"] == "escalated" and run.report["reason"] == "tests_failed"
    assert github.pulls == []
    assert out.repo.remote_branches() == ["main"]
    issues = _pr_issues(github)
    assert len(issues) == 1
    issue = issues[0]
    assert run.outputs["escalation-url"] == issue["html_url"]
    assert {label["name"] for label in issue["labels"]} == {"incident", "needs-human"}
    assert "tests_failed" in issue["title"] and "INC-1234" in issue["title"]
    for expected in ("test_recent_updates_returns_newest_last", "Attempted diff", "deque(maxlen=AUDIT_LOG_SIZE)",
                     "Memory leak in UserService.process_queue()", run.outputs["trace-id"]):
        assert expected in issue["body"]
    failures = run.report["tests"]["failures"]
    assert [f["name"] for f in failures] == ["tests.test_service::test_recent_updates_returns_newest_last"]
    assert "::warning::escalated: tests_failed" in run.stdout


def test_refused_protected_file_then_good_fix(remediate):
    out = remediate(scenarios.protected_then_good())
    run = out.run
    assert run.exit_code == 0 and run.outputs["outcome"] == "fixed"
    events = run.report["guardrail_events"]
    assert [(e["tool"], e["target"], e["rule"]) for e in events] == [
        ("edit_file", "config/production.yaml", "protected_file")]
    # The refusal was the tool result the model saw.
    second_request = out.llm.requests[1]["messages"]
    assert second_request[-1]["role"] == "tool" and "REFUSED (protected_file)" in second_request[-1]["content"]
    assert "audit_log: true" in out.repo.remote_file("hotfix/INC-1234", "config/production.yaml")
    assert "config/production.yaml" not in [c["path"] for c in run.report["changes"]]
    assert "protected_file" in out.github.pulls[0]["body"]


def test_workflow_dispatch_inputs_become_the_incident(remediate, tmp_path):
    event = events.workflow_dispatch({"incident-id": "INC-77",
                                      "summary": "Memory leak in UserService.process_queue()"})
    out = remediate(scenarios.good_fix(), event_name="workflow_dispatch", event=event)
    assert out.run.exit_code == 0, out.run.stdout
    incident = out.run.report["incident"]
    assert incident["id"] == "INC-77" and incident["trigger"] == "workflow_dispatch"
    assert out.github.pulls[0]["head"]["ref"] == "hotfix/INC-77"
    assert "Memory leak in UserService.process_queue()" in out.first_prompt()
    # No file named by the diagnosis: the report says the scope widened.
    assert any("edit scope is the whole repository" in w for w in out.run.report["warnings"])


@pytest.mark.entrypoint
def test_missing_incident_id_is_a_one_line_error(remediate):
    out = remediate([], event=events.repository_dispatch({"summary": "no id here"}))
    run = out.run
    assert run.exit_code == 1
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1
    assert errors[0].startswith("::error::client_payload.incident_id: is required (send it in "
                                "client_payload.incident_id or the incident-id input; raw PagerDuty v3, ")
    assert "Traceback" not in run.stdout + run.stderr
    assert run.outputs["outcome"] == "error"
    assert run.report["outcome"] == "error" and run.report["reason"] == "bad_input"
    assert out.llm.requests == []


@pytest.mark.entrypoint
def test_invalid_config_names_key_and_line(remediate, mcp):
    config = scenarios.config_yaml(mcp.url).replace("  max_files_modified: 3", "  max_files_modifed: 3")
    out = remediate([], config=config)
    assert out.run.exit_code == 1
    line = config.splitlines().index("  max_files_modifed: 3") + 1
    assert f"::error::.remediate.yaml:{line}: guardrails.max_files_modifed: unknown key" in out.run.stdout
    assert out.llm.requests == []


def test_rerun_updates_the_same_pull_request(remediate, github, tmp_path):
    first = remediate(scenarios.good_fix())
    assert first.run.exit_code == 0
    # The checkout is left on the branch it was on, with the fix only on the hotfix branch.
    assert git(first.repo.workspace, "symbolic-ref", "--short", "HEAD") == "main"
    assert "deque(maxlen" not in (first.repo.workspace / "app/users/service.py").read_text()
    second = remediate(scenarios.good_fix(), repo=first.repo.fresh_clone(tmp_path / "second-checkout"))
    assert second.run.exit_code == 0, second.run.stdout
    assert len(github.pulls) == 1
    assert second.run.report["pr"]["created"] is False
    assert second.run.report["pr"]["number"] == first.run.report["pr"]["number"]
    assert first.repo.remote_branches() == ["hotfix/INC-1234", "main"]
    assert any("re-ran" in c for c in github.comments[github.pulls[0]["number"]])


def test_budget_is_checked_before_every_call(remediate):
    # The five scripted calls cost about $0.0045 in all; each reservation bounds the prompt by its bytes,
    # so $0.0045 admits the first calls but not the last: the meter stops before the money runs out.
    out = remediate(scenarios.good_fix(), inputs={"budget-usd": "0.0045"})
    run = out.run
    assert run.exit_code == 2 and run.report["reason"] == "budget_exhausted"
    assert run.report["llm"]["cost_usd"] <= 0.0045
    assert 1 <= len(out.llm.requests) == run.report["llm"]["calls"] < 5
    for call in run.report["llm"]["per_call"]:
        assert call["cost_usd"] <= call["reserved_usd"]
    assert out.github.pulls == []


def test_llm_call_cap_ends_the_run(remediate, mcp):
    chatter = [{"content": "Thinking about it."}] * 5
    out = remediate(chatter, config_extra="agent: {max_llm_calls: 3}\n")
    assert out.run.exit_code == 2 and out.run.report["reason"] == "max_llm_calls"
    assert len(out.llm.requests) == 3


def test_model_giving_up_escalates(remediate):
    out = remediate([{"tool_calls": [{"name": "escalate", "arguments": {"reason": "needs a schema migration"}}]}])
    assert out.run.exit_code == 2 and out.run.report["reason"] == "model_gave_up"
    assert "needs a schema migration" in _pr_issues(out.github)[0]["body"]


def test_dry_run_reports_the_diff_and_pushes_nothing(remediate):
    out = remediate(scenarios.good_fix(), inputs={"dry-run": "true"})
    assert out.run.exit_code == 0 and out.run.outputs["outcome"] == "fixed"
    assert out.github.pulls == [] and out.github.journal == []
    assert out.repo.remote_branches() == ["main"]
    assert "+AUDIT_LOG_SIZE = 1000" in out.run.report["diff"]


def test_a_raw_alertmanager_body_is_remediated_like_a_canonical_one(remediate):
    from pathlib import Path
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "payloads" / "alertmanager.json"
    out = remediate(scenarios.good_fix(), payload=json.loads(fixture.read_text()))
    assert out.run.exit_code == 0, out.run.stdout[-1500:]
    incident = out.run.report["incident"]
    assert incident["source"] == "alertmanager" and incident["suspect"]["files"] == ["app/users/service.py"]
    assert out.github.pulls[0]["head"]["ref"] == f"hotfix/{incident['id']}"
    assert "https://runbooks.example/user-service/memory" in out.github.pulls[0]["body"]


SETUP_CHECK = '''import os
from pathlib import Path


def pytest_configure(config):
    if not (Path(os.environ["REMEDIATE_DEPS"]) / "installed").read_text() == "no key here":
        raise RuntimeError("the project's test dependencies are missing: tests.setup did not run")
'''
SETUP = ("import os, pathlib; p = pathlib.Path(os.environ['REMEDIATE_DEPS']); "
         "(p / 'installed').write_text(os.environ.get('OPENAI_API_KEY', 'no key here')); "
         "pathlib.Path('made-by-setup').write_text('x')")


def test_tests_setup_runs_once_before_the_tests_without_secrets(remediate):
    config_extra = f"tests:\n  setup: [python, -c, \"{SETUP}\"]\n"
    out = remediate(scenarios.good_fix(), config_extra=config_extra, extra_files={"tests/conftest.py": SETUP_CHECK})
    run = out.run
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.report["tests"]["status"] == "passed"
    # It ran in a copy of the checkout, with the same scrubbed environment as the tests; what it installed in
    # REMEDIATE_DEPS reached the tests (the conftest checks), what it wrote in its copy reached nothing.
    assert not (out.repo.workspace / "made-by-setup").exists()
    assert "test_setup" in run.report["timings"]
    # What it made is no part of the fix.
    assert [c["path"] for c in run.report["changes"]] == ["app/users/service.py", "tests/test_audit_log_bounded.py"]


def test_a_failing_tests_setup_escalates_before_any_model_call(remediate):
    config_extra = ("tests:\n  setup: [python, -c, \"print('Collecting auditfmt==9.9'); "
                    "print('ERROR: No matching distribution found for auditfmt==9.9'); raise SystemExit(1)\"]\n")
    out = remediate(scenarios.good_fix(), config_extra=config_extra)
    run = out.run
    assert run.exit_code == 2, run.stdout + run.stderr
    assert (run.outputs["outcome"], run.outputs["reason"]) == ("escalated", "test_setup_failed")
    assert out.llm.requests == [] and out.github.pulls == []
    detail = run.report["detail"]
    assert "exit code 1" in detail and "No matching distribution found for auditfmt==9.9" in detail
    issue = [i for i in out.github.issues if not i.get("_pr")]
    assert len(issue) == 1 and "No matching distribution found for auditfmt==9.9" in issue[0]["body"]



@pytest.mark.entrypoint
def test_a_checkout_without_a_config_file_says_so_loudly(remediate, tmp_path):
    from peers.harness import make_sample_repo

    repo = make_sample_repo(tmp_path / "bare-config", None)
    out = remediate([{"tool_calls": [{"name": "escalate", "arguments": {"reason": "no observability context"}}]}],
                    repo=repo, inputs={"dry-run": "true"})
    run = out.run
    assert run.report["config_source"] is None and run.report["mcp_calls"] == []
    assert any(w.startswith("no configuration file found") for w in run.report["warnings"])
    assert any(line.startswith("::warning::no configuration file found") for line in run.stdout.splitlines())
    assert "no configuration file found" in run.summary
