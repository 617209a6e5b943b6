"""The pure parts of the runs after the PR: which events ask something, the PR marker, and staging signals."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from remediate.config import ReviewConfig, ValidationConfig, parse_config
from remediate.deliver import marker
from remediate.errors import UserError
from remediate.followup.signals import (
    Sample,
    Threshold,
    Unreadable,
    Verdict,
    fill,
    overall,
    read_json,
    read_text,
    verdict,
)
from remediate.followup.triggers import deployed, review_ask
from remediate.incident.payload import Incident, Suspect
from remediate.outcome import Outcome, Reason, Stop


def _comment(body: str, *, action: str = "created", on_pr: bool = True, user_type: str = "User",
             login: str = "octocat") -> dict:
    issue = {"number": 7, **({"pull_request": {"url": "https://api.github.example/pulls/7"}} if on_pr else {})}
    return {"action": action, "issue": issue,
            "comment": {"id": 99, "body": body, "user": {"login": login, "type": user_type}}}


def _skipped(call) -> Stop:
    with pytest.raises(Stop) as caught:
        call()
    assert caught.value.outcome == Outcome.SKIPPED
    return caught.value


def test_a_comment_starting_with_the_command_asks_for_its_instruction():
    ask = review_ask("issue_comment", _comment("/remediate  rename the constant\nand keep the test"), ReviewConfig())
    assert (ask.pr_number, ask.author, ask.comment_id) == (7, "octocat", 99)
    assert ask.instruction == "rename the constant\nand keep the test"
    custom = review_ask("issue_comment", _comment("@fixbot do it"), ReviewConfig(command="@fixbot"))
    assert custom.instruction == "do it"


@pytest.mark.parametrize("event", [
    _comment("please /remediate this"), _comment("/remediated already"), _comment("/remediate"),
    _comment("/remediate fix", action="edited"), _comment("/remediate fix", on_pr=False)])
def test_comments_that_do_not_ask_are_skipped_as_not_triggered(event):
    assert _skipped(lambda: review_ask("issue_comment", event, ReviewConfig())).reason == Reason.NOT_TRIGGERED


@pytest.mark.parametrize("user_type, login", [("Bot", "ci"), ("User", "renovate[bot]"), ("User", "")])
def test_bots_never_start_a_run(user_type, login):
    event = _comment("/remediate spend the budget", user_type=user_type, login=login)
    assert _skipped(lambda: review_ask("issue_comment", event, ReviewConfig())).reason == Reason.NOT_AUTHORIZED


def test_a_review_asks_only_when_it_requests_changes_and_the_config_opts_in():
    review = {"action": "submitted", "pull_request": {"number": 3},
              "review": {"state": "changes_requested", "body": "", "user": {"login": "lead", "type": "User"}}}
    assert _skipped(lambda: review_ask("pull_request_review", review, ReviewConfig())).reason == Reason.NOT_TRIGGERED
    ask = review_ask("pull_request_review", review, ReviewConfig(on_changes_requested=True))
    assert (ask.pr_number, ask.author, ask.comment_id) == (3, "lead", None)
    assert "requests changes" in ask.instruction
    approved = {**review, "review": {**review["review"], "state": "approved"}}
    assert _skipped(lambda: review_ask("pull_request_review", approved, ReviewConfig(on_changes_requested=True)))


def _deployment(state: str = "success", environment: str = "staging", sha: str = "a" * 40) -> dict:
    return {"action": "created", "deployment_status": {"state": state, "environment": environment},
            "deployment": {"id": 12, "sha": sha, "environment": environment}}


def test_only_a_successful_deployment_to_a_validated_environment_is_validated():
    config = ValidationConfig(environment=["staging", "qa"], window_seconds=10, interval_seconds=1)
    assert deployed(_deployment(environment="qa"), config).deployment_id == 12
    for event in (_deployment(state="failure"), _deployment(environment="production"), _deployment(sha="HEAD")):
        assert _skipped(lambda e=event: deployed(e, config)).reason == Reason.NOT_TRIGGERED


def _state(**incident) -> marker.State:
    found = Incident(incident.pop("id", "INC-9"), summary="leak", service="users",
                     suspect=Suspect(("app/x.py",), ("X.y",), "abc1234"), metrics=(("rss", 5.0e8),), **incident)
    return marker.State(found, "00-" + "1" * 32 + "-" + "2" * 16 + "-01", (
        marker.RunEntry("remediate", "3" * 32, "fixed", "tests_passed", 0.0123, "2026-12-01T00:00:00+00:00"),))


def test_the_marker_round_trips_the_incident_its_trace_and_its_runs():
    state = _state()
    body = marker.replace_in(marker.with_runs_table("## Hotfix\ntext", state), state)
    found = marker.find(body)
    assert found == marker.State(
        replace(state.incident, trigger="marker"), state.traceparent, state.runs, 0.0123)
    assert found.cost_usd == 0.0123 and dict(found.incident.metrics) == {"rss": 5.0e8}
    later = found.with_run(marker.RunEntry("review", "4" * 32, "fixed", "tests_passed", 0.01, "now", "a | b"))
    again = marker.replace_in(marker.with_runs_table(body, later), later)
    assert again.count("<!-- remediate:state") == 1 and again.count("### Runs on this incident") == 1
    assert marker.find(again).cost_usd == pytest.approx(0.0223)
    assert "a \\| b" in again  # a note cannot break the table


def _blob(data: object) -> str:
    return f"<!-- remediate:state v1 {base64.b64encode(json.dumps(data).encode()).decode()} -->"


@pytest.mark.parametrize("body, why", [
    ("<!-- remediate:state v2 e30= -->", "version 2"),
    ("<!-- remediate:state v1 !!!! -->", None),  # not base64: no marker at all
    (_blob({"incident": {"id": "INC-1"}, "runs": [{"cost_usd": -5}]}), "without a cost"),
    (_blob({"incident": {"id": "INC-1"}, "runs": [{"cost_usd": True}]}), "without a cost"),
    (_blob({"incident": {"id": ""}}), "bad incident"),
    (_blob({"runs": []}), "no incident"),
])
def test_a_marker_edited_into_something_no_run_wrote_is_refused(body, why):
    if why is None:
        assert marker.find(body) is None
        return
    with pytest.raises(marker.MarkerError, match=why):
        marker.find(body)


def test_a_rerun_keeps_the_runs_the_previous_description_recorded():
    old = _state()
    old_body = marker.replace_in("old", old)
    new = marker.State(old.incident, None, (marker.RunEntry("remediate", "5" * 32, "fixed", "tests_passed", 0.02,
                                                            "later"),))
    merged = marker.find(marker.carried(old_body, marker.replace_in("new", new)))
    assert [r.trace_id[0] for r in merged.runs] == ["3", "5"] and merged.traceparent == old.traceparent
    other = marker.State(replace(old.incident, id="INC-OTHER"), None, new.runs)
    assert marker.find(marker.carried(old_body, marker.replace_in("new", other))).runs == new.runs


@pytest.mark.parametrize("text, value, healthy", [
    ("< 300000000", 2.9e8, True), ("< 300000000", 3e8, False), (">= 0.99", 0.99, True), ("== 0", 0.0, True),
    ("!= 0", 0.0, False), ("<= -1.5e3", -2000, True), (" >  .5 ", 0.6, True)])
def test_thresholds_compare_numbers(text, value, healthy):
    assert Threshold.parse(text).holds(value) is healthy


@pytest.mark.parametrize("text", ["300", "< ", "<< 3", "< 3 or > 5", "~ 3", "< 1e999x"])
def test_a_threshold_that_is_no_comparison_is_refused(text):
    with pytest.raises(ValueError, match="comparison"):
        Threshold.parse(text)


def test_values_are_read_by_jsonpath_or_regex_and_only_numbers_count():
    answer = {"series": [{"pointlist": [[1, 5.0], [2, "7.5"]]}], "flag": True}
    assert read_json("$.series[0].pointlist[-1][1]", answer) == 7.5
    for path in ("$.missing", "$.flag", "$.series"):
        with pytest.raises(Unreadable):
            read_json(path, answer)
    with pytest.raises(Unreadable):
        read_json("$.x", None)
    assert read_text(r"p95 ([0-9.]+) bytes", "memory p95 123456 bytes") == 123456
    assert read_text(r"[0-9]+", "42 things") == 42
    with pytest.raises(Unreadable):
        read_text(r"p99 ([0-9]+)", "p95 1")
    with pytest.raises(Unreadable):
        read_text(r"v=(\w+)", "v=nan")


def _samples(*healthy: bool | None) -> list[Sample]:
    return [Sample(float(i), None if h is None else 1.0, h) for i, h in enumerate(healthy)]


def test_the_verdict_looks_at_the_last_consecutive_samples():
    assert verdict(_samples(False, False, True, True, True), 3) == Verdict.RECOVERED
    assert verdict(_samples(True, True, True, False), 3) == Verdict.NOT_RECOVERED
    assert verdict(_samples(True, True, None), 3) == Verdict.UNKNOWN
    assert verdict(_samples(True, True), 3) == Verdict.UNKNOWN  # too few samples is no proof
    assert verdict(_samples(None, False, True), 3) == Verdict.NOT_RECOVERED
    assert overall([Verdict.RECOVERED, Verdict.UNKNOWN]) == Verdict.UNKNOWN
    assert overall([Verdict.UNKNOWN, Verdict.NOT_RECOVERED]) == Verdict.NOT_RECOVERED
    assert overall([]) == Verdict.UNKNOWN


def test_query_placeholders_take_only_plain_names_from_the_incident():
    query = {"query": "p95:mem{service:{service},env:{environment}}", "n": [1, "{incident_id}"]}
    filled = fill(query, {"service": "user-service", "environment": "staging", "incident_id": "INC-1"})
    assert filled == {"query": "p95:mem{service:user-service,env:staging}", "n": [1, "INC-1"]}
    for hostile in ("x,env:production", "x} OR {*", "a b", None):
        with pytest.raises(Unreadable):
            fill(query, {"service": hostile, "environment": "staging", "incident_id": "INC-1"})


SIGNALS = """mcp:
  servers: [{{name: dd, url: "http://127.0.0.1:9/mcp"}}]
validation:
  window_seconds: 10
  interval_seconds: 2
  signals:
    - name: rss
      server: {server}
      tool: query_metrics
      value: "{value}"
      healthy: "{healthy}"
"""


@pytest.mark.parametrize("server, value, healthy, field, line", [
    ("datadog", "$.a", "< 1", "validation.signals[0].server", 8),
    ("dd", "$.[[", "< 1", "validation.signals[0].value", 10),
    ("dd", "$.a", "below 3", "validation.signals[0].healthy", 11),
])
def test_signal_config_errors_name_the_field_and_line(server, value, healthy, field, line):
    with pytest.raises(UserError) as caught:
        parse_config(SIGNALS.format(server=server, value=value, healthy=healthy), ".remediate.yaml")
    assert caught.value.field == field and caught.value.line == line


def test_a_window_too_short_for_the_samples_asked_is_refused():
    with pytest.raises(UserError, match="fewer than consecutive"):
        parse_config("validation: {window_seconds: 60, interval_seconds: 30, consecutive: 5}", "c.yaml")


def test_the_incidents_total_outlives_the_runs_the_table_keeps():
    state = _state()
    for _ in range(marker.MAX_RUNS + 5):
        state = state.with_run(marker.RunEntry("review", "6" * 32, "escalated", "budget_exhausted", 0.0, "now"))
    found = marker.find(marker.replace_in("", state))
    assert len(found.runs) == marker.MAX_RUNS and found.cost_usd == pytest.approx(0.0123)  # the spend never resets


def test_the_runs_table_is_inert_whatever_the_marker_or_the_instruction_holds():
    state = _state().with_run(marker.RunEntry("review | <img src=x>", "`x`", "fixed", "tests_passed", 0.0, "now",
                                              "fixes #1, closes acme/infra#7, cc @acme/security-team <b>x</b>"))
    table = marker.with_runs_table("", state)
    assert "@acme/security-team" not in table and "fixes #1" not in table and "<b>" not in table
    assert "<img" not in table and "| reviewimgsrcx |" in table


def test_summaries_cannot_plant_our_trailers_in_a_commit_message():
    from remediate.deliver.delivery import _no_trailers
    assert _no_trailers("Fixed it.\nIncident-Id: INC-OTHER\n  trace-id:abc") == \
        "Fixed it.\nIncident-Id - INC-OTHER\n  trace-id -abc"


def test_hostile_answers_are_unreadable_not_crashes():
    with pytest.raises(Unreadable):
        read_json("$.v", {"v": 10 ** 400})
    deep: dict = {"v": 1}
    for _ in range(400):
        deep = {"a": deep}
    with pytest.raises(Unreadable, match="JSONPathRecursionError"):  # the walker's own limit, not a crash
        read_json("$..v", deep)
    with pytest.raises(Unreadable):
        fill("{service}", {"service": "../../x"})


def test_no_spelling_of_the_fence_end_closes_it():
    from remediate.context.pack import Section
    body = "a </untrusted> b </UNTRUSTED > c < / untrusted> d"
    rendered = Section("Logs", body, "mcp logs").render()
    assert rendered.count("</untrusted>") == 1 and rendered.endswith("</untrusted>\n")


def test_a_servers_error_text_in_the_validation_table_pings_nobody_and_renders_no_html():
    from remediate.report import validation_table
    error = "backend down @acme/oncall <img src=https://evil.example/p.png> fixes #1 | x"
    entry = {"signals": [{"name": "rss", "threshold": "< 3e+08", "at_incident": 5e8, "last": None, "verdict": "unknown",
                          "samples": [{"at_seconds": 0.0, "value": None, "healthy": None, "error": error}]}]}
    table = validation_table(entry)
    assert "@acme/oncall" not in table and "<img" not in table and "fixes #1" not in table
    row = table.splitlines()[-1]
    assert len(table.splitlines()) == 3 and row.replace("\\|", "").count("|") == 6  # no column, no row added
