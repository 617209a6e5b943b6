"""architect's hooks, quality gates and code rules (docs/hooks.md), through the entrypoint against the real
peers: the team's checks run in the sandbox, and what they change or say is judged like the model's own work.
The formatter and the async notifier run the entrypoint as a child process (a notifier must notify before
that process exits); the others call the same entrypoint function in this process."""

from __future__ import annotations

import json
import textwrap

import pytest

from peers import scenarios
from peers.harness import make_sample_repo
from peers.http_receiver import Receiver

UNFORMATTED_READER = scenarios._edit("        return self._audit_log[-limit:]",
                                     "        return list( self._audit_log )[ -limit: ]")


def _messages_after(out, text: str) -> str:
    """Everything the model was sent once `text` first appeared: where a tool result or a hook's note lands."""
    for i, request in enumerate(out.llm.requests):
        if text in json.dumps(request["messages"]):
            return json.dumps(out.llm.requests[i]["messages"])
    return ""


def _hooks(block: str) -> str:
    return "hooks:\n" + textwrap.indent(textwrap.dedent(block).strip("\n"), "  ") + "\n"


@pytest.mark.entrypoint
def test_a_post_edit_formatter_reformats_the_edit_and_the_pr_carries_the_formatted_code(remediate, github):
    script = scenarios.good_fix()
    script[1] = {"tool_calls": [*scenarios.BOUND_THE_LOG, UNFORMATTED_READER]}
    out = remediate(script, config_extra=_hooks("""
        post_edit:
          - name: ruff-format
            command: ruff format --quiet "$ARCHITECT_FILE_PATH"
            file_patterns: ["*.py"]
    """))
    run = out.run
    assert (run.report["outcome"], run.report["reason"]) == ("fixed", "tests_passed"), run.stdout[-3000:]
    pushed = out.repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    assert "return list(self._audit_log)[-limit:]" in pushed and "list( self" not in pushed
    formats = [c for c in run.report["checks"] if c["name"] == "ruff-format"]
    assert {c["event"] for c in formats} == {"post_tool_use"} and all(c["decision"] == "allow" for c in formats)
    assert any(c["files_changed"] == ["app/users/service.py"] for c in formats)  # the reformat became the change
    assert "list(self._audit_log)[-limit:]" in run.report["diff"]
    [pr] = github.pulls
    assert "Hooks and quality gates" in pr["body"] and "ruff-format" in pr["body"]


def test_a_pre_tool_use_hook_blocks_an_edit_and_its_reason_reaches_the_model(remediate):
    attempt = scenarios._edit("class UserStore:", "class UserStore:  # cache", path="app/users/store.py")
    script = [{"tool_calls": [attempt]}, *scenarios.fix_after_an_attack()]
    out = remediate(script, config_extra=_hooks("""
        pre_tool_use:
          - name: data-team-owns-the-store
            matcher: "edit_file|write_file|apply_patch"
            command: |
              if [ "$ARCHITECT_FILE_PATH" = app/users/store.py ]; then
                echo "app/users/store.py belongs to the data team; change the service instead" >&2; exit 2
              fi
    """), guardrails="  edit_scope: repo\n")
    run = out.run
    assert run.report["outcome"] == "fixed", run.stdout[-3000:]
    [refusal] = [e for e in run.report["guardrail_events"] if e["rule"] == "hook_blocked"]
    assert refusal["tool"] == "edit_file" and "belongs to the data team" in refusal["detail"]
    told = out.llm.requests[1]["messages"][-1]
    assert told["role"] == "tool" and "belongs to the data team" in told["content"]
    assert "store.py" not in {c["path"] for c in run.report["changes"]}
    blocks = [c for c in run.report["checks"] if c["decision"] == "block"]
    assert [(c["event"], c["name"], c["exit_code"]) for c in blocks] == [
        ("pre_tool_use", "data-team-owns-the-store", 2)]


def test_a_required_quality_gate_that_fails_sends_the_model_back_and_the_pr_opens_once_it_passes(remediate):
    unused = scenarios._edit("from collections import deque", "import os\nfrom collections import deque")
    script = scenarios.good_fix()
    script[1] = {"tool_calls": [*scenarios.BOUND_THE_LOG, scenarios.FIX_READER, unused]}
    cleanup = {"tool_calls": [scenarios._edit("import os\nfrom collections import deque",
                                              "from collections import deque")]}
    script = [*script, cleanup, script[-1]]
    out = remediate(script, guardrails=textwrap.indent(textwrap.dedent("""\
        quality_gates:
          - {name: lint, command: "ruff check --isolated --select F app tests"}
          - {name: types-advisory, command: "exit 1", required: false}
    """), "  "))
    run = out.run
    assert (run.report["outcome"], run.report["reason"]) == ("fixed", "tests_passed"), run.stdout[-3000:]
    gates = [(c["name"], c["decision"]) for c in run.report["checks"] if c["kind"] == "gate"]
    assert gates == [("lint", "failed"), ("types-advisory", "failed"), ("lint", "passed"), ("types-advisory", "failed")]
    refused = _messages_after(out, "NOT FINISHED")
    assert "F401" in refused and "`os` imported but unused" in refused  # the gate's output tail, for the model
    assert "import os" not in out.repo.remote_file("hotfix/INC-1234", "app/users/service.py")


def test_a_code_rule_blocks_print_in_app_but_not_in_tests(remediate):
    debug = scenarios._edit("        return self._audit_log[-limit:]",
                            "        print('reading audit log')\n        return self._audit_log[-limit:]")
    test_with_print = scenarios.REGRESSION_TEST.replace(
        "    assert len(", "    print('checking')  # noqa: T201\n    assert len(")
    script = scenarios.good_fix()
    script[0] = {"tool_calls": [debug]}
    script[2] = {"tool_calls": [{"name": "write_file", "arguments": {"path": "tests/test_audit_log_bounded.py",
                                                                     "content": test_with_print}}]}
    out = remediate(script, guardrails=textwrap.indent(textwrap.dedent("""\
        code_rules:
          - {pattern: '\\bprint\\(', message: "use the logger, not print", severity: block, file_patterns: ["app/**"]}
          - {pattern: '# noqa', message: "a hotfix should not silence the linter", severity: warn}
    """), "  "))
    run = out.run
    assert run.report["outcome"] == "fixed", run.stdout[-3000:]
    [refusal] = [e for e in run.report["guardrail_events"] if e["rule"] == "code_rule"]
    assert refusal["target"] == "app/users/service.py" and "use the logger" in refusal["detail"]
    assert "use the logger" in out.llm.requests[1]["messages"][-1]["content"]
    assert "print(" not in out.repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    assert "print('checking')" in out.repo.remote_file("hotfix/INC-1234", "tests/test_audit_log_bounded.py")
    warned = out.llm.requests[3]["messages"][-1]["content"]  # the write_file result: taken, with the warning
    assert warned.startswith("OK") and "a hotfix should not silence the linter" in warned


def test_a_pre_tool_use_hook_that_times_out_blocks(remediate):
    attempt = {"name": "write_file", "arguments": {"path": "tests/test_extra.py", "content": "def test_x():\n"
                                                   "    assert True\n"}}
    script = [{"tool_calls": [attempt]}, *scenarios.fix_after_an_attack()]
    out = remediate(script, config_extra=_hooks("""
        pre_tool_use:
          - {name: slow-policy, matcher: write_file, command: "sleep 30", timeout: 1}
    """))
    run = out.run
    assert run.report["outcome"] == "fixed", run.stdout[-3000:]
    [slow] = [c for c in run.report["checks"] if c["name"] == "slow-policy"]
    assert slow["decision"] == "timeout" and slow["duration_s"] < 10
    [refusal] = [e for e in run.report["guardrail_events"] if e["rule"] == "hook_blocked"]
    assert "timed out" in refusal["detail"] and "on_hook_error: allow" in refusal["detail"]
    assert "tests/test_extra.py" not in {c["path"] for c in run.report["changes"]}


NOTIFIER = """import json, os, urllib.request

body = {"outcome": os.environ["ARCHITECT_OUTCOME"], "pr": os.environ["REMEDIATE_PR_URL"],
        "environment": dict(os.environ)}
request = urllib.request.Request(os.environ["NOTIFY_URL"], data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10)
"""


@pytest.mark.entrypoint
def test_an_async_session_end_hook_posts_to_a_webhook_before_the_action_exits(remediate, tmp_path):
    receiver = Receiver().start()
    trace_file = tmp_path / "traces.jsonl"
    try:
        out = remediate(scenarios.good_fix(), env={"NOTIFY_URL": receiver.url("/notify")},
                        extra_files={"scripts/notify.py": NOTIFIER}, config_extra=_hooks("""
            session_end:
              - {name: notify, async: true, timeout: 30, env: [NOTIFY_URL],
                 command: "sleep 1; python scripts/notify.py"}
        """) + f"telemetry: {{enabled: true, exporter: json-file, trace_file: {trace_file}}}\n")
    finally:
        receiver.stop()
    run = out.run
    assert run.report["outcome"] == "fixed", run.stdout[-3000:]
    [sent] = receiver.requests  # it had time to notify: awaited, not killed with the process
    assert sent["path"] == "/notify" and sent["json"]["outcome"] == "fixed"
    assert sent["json"]["pr"] == run.report["pr"]["url"]
    seen = json.dumps(sent["json"]["environment"])
    for secret in (out.github.token, out.llm.api_key, run.env["INCIDENT_MCP_TOKEN"]):
        assert secret not in seen  # a hook gets what its env: names, nothing else of ours
    [notify] = [c for c in run.report["checks"] if c["name"] == "notify"]
    assert notify["async"] and notify["decision"] == "allow" and notify["event"] == "session_end"
    # Its span is in the run's trace, under the root, though it ran in its own thread.
    spans = {s["name"]: s for s in map(json.loads, trace_file.read_text().splitlines())}
    hook, root = spans["execute_hook notify"], spans["invoke_agent remediate"]
    assert hook["context"]["trace_id"] == root["context"]["trace_id"] and hook["parent_id"] is not None
    assert hook["attributes"]["remediate.hook.event"] == "session_end" and hook["attributes"]["remediate.hook.async"]


DESIGN_EXAMPLE = scenarios.ARCHITECT_YAML.replace("http://datadog-mcp-bridge:8082/mcp", "MCP_URL").replace(
    "DD_MCP_TOKEN", "INCIDENT_MCP_TOKEN")
EVERY_OTHER_SECTION = """language: en
agents: {build: {max_steps: 40}}
logging: {level: human, verbose: 1}
workspace: {root: ., allow_delete: false}
indexer: {enabled: true}
context: {max_context_tokens: 80000}
evaluation: {mode: "off"}
commands: {enabled: true, safe_commands: [ls]}
llm_cache: {enabled: false}
memory: {enabled: false}
skills: {auto_discover: true}
sessions: {auto_save: true}
ralph: {max_iterations: 3}
parallel: {workers: 2}
checkpoints: {enabled: false}
auto_review: {enabled: false}
health: {enabled: false}
"""


def test_the_architect_example_with_every_architect_section_loads_and_names_what_it_ignores(remediate, mcp,
                                                                                             tmp_path):
    # DESIGN.md's .architect.yaml as it is (its collector does not exist here: the flush is bounded), with
    # architect's other sections and guardrail keys added.
    keys = ('  enabled: true\n  sensitive_files: ["config/production.*"]\n  require_test_after_edit: true\n'
            "  max_commands_executed: 5\n")
    config = DESIGN_EXAMPLE.replace("MCP_URL", mcp.url).replace(
        "  max_files_modified: 3\n", "  max_files_modified: 3\n" + keys) + EVERY_OTHER_SECTION
    repo = make_sample_repo(tmp_path / "architect", None, {".architect.yaml": config})
    out = remediate(scenarios.good_fix(), repo=repo)
    run = out.run
    assert run.report["outcome"] == "fixed", run.stdout[-3000:]
    assert run.report["config_source"] == ".architect.yaml"
    ignored = {entry["key"].split(" ")[0] for entry in run.report["ignored_config"]}
    assert ignored == {"language", "agents", "logging", "workspace", "indexer", "context", "evaluation", "commands",
                       "llm_cache", "memory", "skills", "sessions", "ralph", "parallel", "checkpoints",
                       "auto_review", "health"}
    assert all(".architect.yaml line" in entry["key"] and entry["why"] for entry in run.report["ignored_config"])
    logged = [line for line in run.stdout.splitlines() if "is loaded but ignored" in line]
    assert len(logged) == len(ignored)  # once each
    assert "Configuration loaded but not acted on" in run.summary
