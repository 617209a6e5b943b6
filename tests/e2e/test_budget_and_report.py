"""Every cent accounted, every outcome reported."""

from __future__ import annotations

import pytest

from peers import scenarios


def test_failed_llm_attempts_are_retried_and_counted(remediate):
    script = [{"status": 503, "error": "overloaded"}, *scenarios.good_fix()]
    out = remediate(script)
    assert out.run.exit_code == 0
    per_call = out.run.report["llm"]["per_call"]
    assert len(per_call) == len(out.llm.requests) == 6
    assert per_call[0]["error"].startswith("LLM endpoint answered HTTP 503")
    assert per_call[0]["cost_usd"] == 0  # an error status: the provider billed nothing
    assert out.run.outputs["llm-calls"] == "6"


def test_an_endpoint_that_keeps_failing_is_an_error_with_a_report(remediate):
    out = remediate([{"status": 500}] * 3)  # llm.max_retries defaults to 2: three attempts
    assert out.run.exit_code == 1
    assert out.run.report["reason"] == "llm_unavailable"
    assert len(out.llm.requests) == 3 and out.run.report["llm"]["calls"] == 3
    [issue] = [i for i in out.github.issues if not i.get("_pr")]
    assert "llm_unavailable" in issue["title"]


def test_an_unpriced_model_with_a_budget_is_a_config_error(remediate):
    out = remediate(scenarios.good_fix(), inputs={"model": "my-private-model"})
    assert out.run.exit_code == 1
    assert "costs.prices: no price is known for model 'my-private-model'" in out.run.stdout
    assert out.llm.requests == []


def test_config_prices_make_a_model_usable(remediate, mcp):
    config = scenarios.config_yaml(mcp.url).replace(
        "costs: {budget_usd: 1.00}", "costs: {budget_usd: 1.00, prices: {my-private-model: {input: 1.0, output: 2.0}}}")
    priced = remediate(scenarios.good_fix(), inputs={"model": "my-private-model"}, config=config)
    assert priced.run.exit_code == 0
    calls = priced.run.report["llm"]["per_call"]
    assert priced.run.report["llm"]["cost_usd"] == round(
        sum((c["input_tokens"] * 1.0 + c["output_tokens"] * 2.0) / 1e6 for c in calls), 6)


@pytest.mark.entrypoint
def test_a_crash_while_delivering_still_ends_in_a_report(remediate, github):
    github.garbage_next.add("POST /pulls")
    out = remediate(scenarios.good_fix())
    run = out.run
    assert run.exit_code == 1
    assert run.report["outcome"] == "error" and run.report["reason"] == "internal_error"
    assert run.outputs["outcome"] == "error" and run.outputs["trace-id"]
    assert run.report["tests"]["status"] == "passed"  # what happened before the crash is kept
    assert {"incident", "config", "mcp", "context", "agent", "tests", "deliver"} <= set(run.report["timings"])
    assert len(run.report["changes"]) == 2
    assert "::error::" in run.stdout and "Traceback" not in run.stdout


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_call_still_going_at_the_wall_time_limit_ends_the_run_there(remediate, stream):
    slow = {"content": "thinking " * 40, "pause_seconds": 0.5}  # 40 chunks streamed, or one answer, 20 s late
    slow_plain = {"content": "thinking", "pause_seconds": 20}
    out = remediate([slow if stream else slow_plain], stream=stream,
                    config_extra="agent: {max_wall_seconds: 2}\n")
    report = out.run.report
    assert (report["outcome"], report["reason"]) == ("escalated", "wall_time"), report["detail"]
    assert "during a model call" in report["detail"]
    assert report["timings"]["agent"] < 8  # the limit (2 s), not the 20 s the answer takes nor the client's 120 s


def test_an_empty_streamed_answer_is_a_failed_attempt_and_retried(remediate):
    out = remediate([{"empty_stream": True}, *scenarios.good_fix()], stream=True)
    assert (out.run.report["outcome"], out.run.report["reason"]) == ("fixed", "tests_passed")
    first = out.run.report["llm"]["per_call"][0]
    assert "the streamed answer was empty" in first["error"] and first["usage_reported"] is False
