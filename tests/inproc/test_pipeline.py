"""The whole pipeline in-process: a real git checkout with a bare origin, real test runs of the sample
service, and the edges (model, MCP hub, GitHub) replaced through `Edges`. The entrypoint as a child process
against the real peers is tests/e2e."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peers import scenarios
from peers.inprocess import LLM_KEY, TOKEN, Case
from remediate.agent.llm import LLMError


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
