"""The report record and its renderings, from values: what the PR, the issue and the summary say."""

import json

import jsonschema

from remediate.guard.changes import ChangeSet
from remediate.incident.payload import Incident, Suspect
from remediate.outcome import Outcome, Reason
from remediate.records import Escalation, GuardrailEvent, PullRequest, TestFailure, TestRun
from remediate.report import Report, load_schema, render_escalation, render_pr_body, render_summary
from remediate.secrets import Redactor


def _report(**fields) -> Report:
    changes = ChangeSet().with_content("app.py", "x = 1\n", "x = 2\n")
    report = Report(incident=Incident("INC-7", "leak in f()", suspect=Suspect(("app.py",))), changes=changes,
                    trace_id="ab" * 16, model="gpt-4.1-mini", budget_usd=1.0,
                    llm_calls=[{"input_tokens": 10, "output_tokens": 5, "cached_tokens": 0, "cost_usd": 0.25,
                                "reserved_usd": 0.3, "usage_reported": True, "tool_calls": ["finish"]}])
    for key, value in fields.items():
        setattr(report, key, value)
    return report


def test_the_json_report_follows_its_schema_for_each_outcome(tmp_path):
    fixed = _report(outcome=Outcome.FIXED, reason=Reason.TESTS_PASSED, pr=PullRequest(3, "https://x/pull/3", "b", True))
    escalated = _report(outcome=Outcome.ESCALATED, reason=Reason.TESTS_FAILED,
                        escalation=Escalation(("github_issue",), "https://x/issues/4", 4))
    for report in (fixed, escalated, Report()):
        path = tmp_path / "r.json"
        report.write(path, Redactor())
        data = json.loads(path.read_text())
        jsonschema.Draft202012Validator(load_schema()).validate(data)
        assert data["outcome"] == str(report.outcome) and data["reason"] == str(report.reason)
    assert fixed.exit_code == 0 and escalated.exit_code == 2 and Report().exit_code == 1


def test_the_pr_body_has_the_diagnosis_the_change_tests_refusals_cost_and_trace():
    run = TestRun(("python", "-m", "pytest"), ("tests/test_app.py",), "passed", passed=3, duration_s=1.25)
    report = _report(tests=run, agent_summary="Root cause: x was 1.",
                     guardrail_events=[GuardrailEvent("write_file", ".github/x.yml", "never_writable", "no | pipes")])
    body = render_pr_body(report)
    for expected in ("`INC-7`", "> leak in f()", "> Root cause: x was 1.", "| `app.py` | modified | 1 | 1 |",
                     "-x = 1", "+x = 2", "**passed**: 3 passed", "`tests/test_app.py`", "never_writable",
                     "no \\| pipes", "1 LLM calls to `gpt-4.1-mini`, $0.2500 of $1.00 budget", "`" + "ab" * 16 + "`"):
        assert expected in body, expected


def test_the_escalation_shows_what_was_tried_and_the_failing_output():
    run = TestRun(("pytest",), ("t.py",), "failed", passed=1, failed=1,
                  failures=(TestFailure("t::test_x", "E   assert 1 == 2"),), output_tail="assert 1 == 2")
    text = render_escalation(_report(outcome=Outcome.ESCALATED, reason=Reason.TESTS_FAILED, tests=run,
                                     attempt_branch="hotfix-attempt/INC-7"))
    assert text.startswith("## remediate could not ship a fix: `tests_failed`")
    assert "FAILED t::test_x" in text and "Test output (tail)" in text and "hotfix-attempt/INC-7" in text


def test_the_summary_leads_with_the_outcome():
    summary = render_summary(_report(outcome=Outcome.FIXED, reason=Reason.TESTS_PASSED,
                                     pr=PullRequest(3, "https://x/pull/3", "hotfix/INC-7", True)), "/r.json")
    assert summary.splitlines()[0] == "# ✅ remediate: fixed"
    assert "[#3](https://x/pull/3) on `hotfix/INC-7`" in summary and "`/r.json`" in summary


def test_the_models_words_cannot_pass_for_our_sections():
    forged = "Fixed.\n### Tests\n**passed**: 99 passed\nRegression proof ✅"
    body = render_pr_body(_report(agent_summary=forged))
    assert "\n### Tests\n**passed**: 99" not in body
    assert "> ### Tests" in body and "> Regression proof ✅" in body


def test_the_report_is_never_written_into_a_planted_folder(tmp_path):
    import os

    import pytest

    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "remediate").symlink_to(target)
    with pytest.raises(OSError, match="link or another user's folder"):
        Report().write(tmp_path / "remediate" / "report.json", Redactor())
    assert os.listdir(target) == []
