"""The whole pipeline in-process: a real git checkout with a bare origin, real test runs of the sample
service, and the edges (model, MCP hub, GitHub) replaced through `Edges`. The entrypoint as a child process
against the real peers is tests/e2e."""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from peers import events, scenarios
from peers.harness import make_sample_repo, parse_outputs
from peers.memory_github import MemoryGitHub
from remediate.actions import Runner
from remediate.agent.llm import Completion, LLMError, ToolCall
from remediate.mcp.client import McpHub
from remediate.pipeline import Edges, Run, RunRequest, finish
from remediate.report import load_schema

CONFIG = """llm: {model: openai/gpt-4.1-mini, api_key_env: OPENAI_API_KEY}
guardrails:
  protected_files: ["*.env*", "config/production.*", "Dockerfile*"]
costs: {budget_usd: 1.00}
"""
LLM_KEY = "sk-test-key-abcdefghijklmnopqrstuvwxyz"
TOKEN = "ghs_inprocesstoken0123456789abcdef"


class ScriptedModel:
    """A `ChatModel` that answers from a script and keeps every request."""

    model = "gpt-4.1-mini"

    def __init__(self, script: list[dict[str, Any] | Exception]) -> None:
        self.script = list(script)
        self.requests: list[list[dict[str, Any]]] = []

    def complete(self, messages: Any, tools: Any, max_tokens: int) -> Completion:
        self.requests.append(copy.deepcopy(list(messages)))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        calls = tuple(ToolCall(f"call{len(self.requests)}_{i}", c["name"], json.dumps(c["arguments"]))
                      for i, c in enumerate(step.get("tool_calls", [])))
        return Completion(step.get("content"), calls, "tool_calls" if calls else "stop", True, 2000, 0, 150)


class Case:
    def __init__(self, base: Path, config: str = CONFIG) -> None:
        self.base = base
        self.repo = make_sample_repo(base / "repo", config)
        self.github = MemoryGitHub()
        self.outputs_file = base / "outputs"
        self.summary_file = base / "summary"

    def run(self, script: list[Any], payload: dict[str, Any] | None = None, inputs: dict[str, str] | None = None,
            ) -> tuple[dict[str, Any], dict[str, str], ScriptedModel, str]:
        model = ScriptedModel(script)
        self.outputs_file.write_text("")
        self.summary_file.write_text("")
        env = {"PATH": os.environ["PATH"], "HOME": str(self.base), "GITHUB_ACTIONS": "true",
               "OPENAI_API_KEY": LLM_KEY, "GITHUB_REPOSITORY": "acme/svc", "GITHUB_OUTPUT": str(self.outputs_file),
               "GITHUB_STEP_SUMMARY": str(self.summary_file), "GIT_CONFIG_GLOBAL": "/dev/null",
               "RUNNER_TEMP": str(self.base)}
        event = events.repository_dispatch(payload or scenarios.payload(self.repo.bug_commit))
        stdout = io.StringIO()
        edges = Edges(chat=lambda *_: model, mcp=lambda servers, environ, telemetry: McpHub(list(servers), environ),
                      github=lambda *_: self.github)
        run = Run(RunRequest(self.repo.workspace, env, {"github-token": TOKEN, **(inputs or {})},
                             "repository_dispatch", event), Runner(env, stdout), edges)
        run.execute()
        exit_code = finish(run, self.base / "report.json")
        report = json.loads((self.base / "report.json").read_text())
        jsonschema.Draft202012Validator(load_schema()).validate(report)
        outputs = parse_outputs(self.outputs_file.read_text())
        assert int(outputs["llm-calls"]) == len(model.requests)
        assert exit_code == {"fixed": 0, "escalated": 2, "error": 1}[report["outcome"]]
        return report, outputs, model, stdout.getvalue()


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return Case(tmp_path)


def test_a_good_fix_opens_one_pull_request_with_the_vetted_change(case):
    report, outputs, _, stdout = case.run(scenarios.good_fix())
    assert (report["outcome"], report["reason"]) == ("fixed", "tests_passed")
    [pr] = case.github.pulls
    assert (pr["head"], pr["base"], pr["labels"]) == ("hotfix/INC-1234", "main", ["hotfix", "auto-generated"])
    assert outputs["pr-url"] == pr["url"] and outputs["branch"] == "hotfix/INC-1234"
    assert report["trace_id"] in pr["body"] and "deque(maxlen=AUDIT_LOG_SIZE)" in pr["body"]
    pushed = case.repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    assert pushed is not None and "deque(maxlen=AUDIT_LOG_SIZE)" in pushed
    assert case.repo.remote_file("hotfix/INC-1234", "tests/test_audit_log_bounded.py") == scenarios.REGRESSION_TEST
    assert report["tests"]["regression_proof"]["verdict"] == "fails_before_passes_after"
    masks = [line for line in stdout.splitlines() if line.startswith("::add-mask::")]
    assert masks[:2] == ["::add-mask::" + TOKEN, "::add-mask::" + LLM_KEY]  # masked before anything else is said
    shown = "\n".join(line for line in stdout.splitlines() if line not in masks) + json.dumps(report) + pr["body"]
    assert LLM_KEY not in shown and TOKEN not in shown


def test_a_rerun_updates_the_same_pull_request_and_says_so(case):
    case.run(scenarios.good_fix())
    report, _, _, _ = case.run(scenarios.good_fix())
    [pr] = case.github.pulls
    assert report["pr"]["created"] is False and report["pr"]["number"] == pr["number"]
    assert len(pr["comments"]) == 1 and "re-ran for incident `INC-1234`" in pr["comments"][0]


def test_a_wrong_fix_escalates_with_the_failing_tests_and_no_pull_request(case):
    report, outputs, _, _ = case.run(scenarios.wrong_fix())
    assert (report["outcome"], report["reason"]) == ("escalated", "tests_failed")
    assert case.github.pulls == [] and case.repo.remote_branches() == ["main"]
    [issue] = case.github.issues
    assert outputs["escalation-url"] == issue["url"] and "tests_failed" in issue["title"]
    assert "<!-- remediate:incident:INC-1234 -->" in issue["body"] and "FAILED" in issue["body"]


def test_a_model_that_gives_up_escalates_once_per_incident(case):
    give_up = [{"tool_calls": [{"name": "escalate", "arguments": {"reason": "needs a schema migration"}}]}]
    first, _, _, _ = case.run(give_up)
    second, _, _, _ = case.run(give_up)
    assert first["reason"] == second["reason"] == "model_gave_up"
    assert first["detail"] == "needs a schema migration"
    [issue] = case.github.issues
    assert len(issue["comments"]) == 1 and "ran again and escalated: `model_gave_up`" in issue["comments"][0]


def test_an_llm_failure_is_an_error_and_still_escalates(case):
    report, _, model, _ = case.run([LLMError("502 from the gateway", retryable=False, maybe_billed=False)])
    assert (report["outcome"], report["reason"]) == ("error", "llm_unavailable")
    assert len(model.requests) == 1 and "502 from the gateway" in report["detail"]
    assert [i["title"] for i in case.github.issues] == ["[remediate] Incident INC-1234 needs a human: llm_unavailable"]


def test_a_github_failure_after_the_push_is_an_error_named_as_such(case):
    case.github.fail.add("create_pull_request")
    report, _, _, _ = case.run(scenarios.good_fix())
    assert (report["outcome"], report["reason"]) == ("error", "github_failed")
    assert "scripted failure" in report["detail"]
    assert case.repo.remote_file("hotfix/INC-1234", "app/users/service.py") is not None  # pushed before it failed


def test_bad_input_ends_before_any_model_call_and_leaves_a_report(case):
    report, outputs, model, stdout = case.run([], payload={"summary": "no id"})
    assert (report["outcome"], report["reason"]) == ("error", "bad_input")
    assert "client_payload.incident_id" in report["detail"] and model.requests == []
    assert outputs["outcome"] == "error" and "::error::" in stdout


def test_dry_run_pushes_nothing_and_opens_nothing(case):
    report, outputs, _, _ = case.run(scenarios.good_fix(), inputs={"dry-run": "true"})
    assert (report["outcome"], report["dry_run"]) == ("fixed", True)
    assert case.github.calls == [] and case.repo.remote_branches() == ["main"] and outputs["pr-url"] == ""


def test_the_run_tests_tool_and_the_final_run_select_the_same_tests(case):
    report, _, model, _ = case.run(scenarios.good_fix())
    tool_result = next(m["content"] for m in model.requests[-1] if m["role"] == "tool" and "selected:" in m["content"])
    selected = tool_result.split("selected: ", 1)[1].splitlines()[0].split(", ")
    assert sorted(selected) == sorted(report["tests"]["selected"])
