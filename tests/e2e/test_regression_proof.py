"""Fails before, passes after: proven on a clean worktree of the code before the fix."""

from __future__ import annotations

import pytest

from peers import scenarios
from peers.harness import git

ALREADY_BROKEN = '''from app.users.service import UserService


def test_depends_on_a_service_that_is_down_in_ci():
    raise ConnectionError("billing-db unreachable")
'''


@pytest.mark.entrypoint
def test_the_pr_shows_the_new_test_failing_before_and_passing_after(remediate):
    out = remediate(scenarios.good_fix())
    proof = out.run.report["tests"]["regression_proof"]
    assert proof["verdict"] == "fails_before_passes_after" and proof["tests"] == ["tests/test_audit_log_bounded.py"]
    assert "assert 5000 <= 1000" in proof["detail"]
    assert proof["before"]["failures"] == ["tests.test_audit_log_bounded::test_audit_log_stays_bounded_under_load"]
    assert "Regression proof ✅" in out.github.pulls[0]["body"]
    # The worktree used for the proof is gone again.
    assert len(git(out.repo.workspace, "worktree", "list").splitlines()) == 1


def test_a_fix_without_a_test_says_nothing_proves_it(remediate):
    script = [scenarios.good_fix()[1], {"tool_calls": [{"name": "finish", "arguments": {"summary": "bounded"}}]}]
    out = remediate(script)
    assert out.run.exit_code == 0
    assert out.run.report["tests"]["regression_proof"]["verdict"] == "no_new_test"
    assert "Regression proof ⚠️" in out.github.pulls[0]["body"]


def test_a_test_failing_before_the_fix_is_not_blamed_on_it(remediate):
    out = remediate(scenarios.good_fix(), extra_files={"tests/test_billing_link.py": ALREADY_BROKEN})
    run = out.run
    assert run.exit_code == 0 and run.outputs["outcome"] == "fixed"
    assert run.outputs["reason"] == "tests_pass_except_pre_existing_failures"
    proof = run.report["tests"]["regression_proof"]
    assert proof["pre_existing_failures"] == [
        "tests.test_billing_link::test_depends_on_a_service_that_is_down_in_ci"]
    assert run.report["tests"]["status"] == "failed"
    pr = out.github.pulls[0]
    assert "Failing before the fix too (not caused by it)" in pr["body"]
    assert any("not blamed on it" in w for w in run.report["warnings"])
    # Shipped past tests that already failed: a draft, labelled so, and the model was told which predate it.
    assert pr["draft"] is True and "pre-existing-failures" in [label["name"] for label in pr["labels"]]
    told = next(m["content"] for m in out.llm.requests[4]["messages"][::-1] if m["role"] == "tool")
    assert "Failing on the code before your change too (not caused by it): " \
           "tests.test_billing_link::test_depends_on_a_service_that_is_down_in_ci" in told


def test_a_fix_that_breaks_another_test_is_still_blamed(remediate):
    out = remediate(scenarios.wrong_fix())
    assert out.run.exit_code == 2 and out.run.report["reason"] == "tests_failed"
    assert out.run.report["tests"]["regression_proof"]["pre_existing_failures"] == []


def test_a_run_stopped_at_the_first_failure_escalates_a_wrong_fix_at_once(remediate):
    out = remediate(scenarios.wrong_fix(), config_extra="tests:\n  max_failures: 1\n")
    run = out.run
    assert run.exit_code == 2 and run.report["reason"] == "tests_failed"
    tests = run.report["tests"]
    assert tests["stopped_after_failures"] == 1 and tests["failed"] + tests["errors"] == 1
    assert "--maxfail=1" in tests["command"]
    assert "(stopped after 1 failures)" in run.report["detail"]


def test_failures_that_all_predate_the_fix_make_the_stopped_run_complete_itself(remediate):
    out = remediate(scenarios.good_fix(), config_extra="tests:\n  max_failures: 1\n",
                    extra_files={"tests/test_billing_link.py": ALREADY_BROKEN})
    run = out.run
    # The first failure seen was the pre-existing one; the rest of the tests had to run before deciding.
    assert run.exit_code == 0 and run.outputs["reason"] == "tests_pass_except_pre_existing_failures"
    tests = run.report["tests"]
    assert tests["stopped_after_failures"] is None and "--maxfail=1" not in tests["command"]
    assert tests["passed"] >= 3 and tests["regression_proof"]["verdict"] == "fails_before_passes_after"


def test_mode_all_runs_the_whole_suite(remediate):
    out = remediate(scenarios.good_fix(), config_extra="tests:\n  mode: all\n")
    tests = out.run.report["tests"]
    assert out.run.exit_code == 0
    assert tests["selected"] == [] and tests["selection_reason"] == {"(whole suite)": "tests.mode: all"}
    assert tests["passed"] == 4  # test_service (2), test_api (1), and the new regression test
    assert tests["regression_proof"]["verdict"] == "fails_before_passes_after"
