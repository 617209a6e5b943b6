import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediate.agent.budget import BudgetExhausted, BudgetMeter, Price, price_for
from remediate.errors import UserError


def test_exact_names_and_dated_snapshots_are_priced_but_prefixes_are_not():
    assert price_for("gpt-4.1") == Price(2.00, 0.50, 8.00)
    assert price_for("openai/gpt-4.1-mini") == Price(0.40, 0.10, 1.60)
    assert price_for("gpt-4.1-mini-2025-04-14") == price_for("gpt-4.1-mini")
    assert price_for("gpt-4.1-mini-turbo") is None  # no prefix guess
    assert price_for("my-finetune") is None


def test_overrides_win_and_must_be_complete():
    assert price_for("my-model", {"my-model": {"input": 1.0, "output": 2.0}}) == Price(1.0, 1.0, 2.0)
    assert price_for("gpt-4.1", {"gpt-4.1": {"input": 9, "cached_input": 1, "output": 9}}) == Price(9, 1, 9)
    with pytest.raises(UserError, match=r"costs\.prices\.x"):
        price_for("x", {"x": {"input": 1.0}})


def test_cached_tokens_are_billed_at_the_cached_rate():
    price = Price(2.0, 0.5, 8.0)
    assert price.cost(1_000_000, 400_000, 100_000) == pytest.approx(1.2 + 0.2 + 0.8)


def test_reservation_shrinks_max_tokens_then_stops():
    meter = BudgetMeter(Price(1.0, 1.0, 10.0), budget_usd=0.01)
    granted, reserved = meter.reserve(request_bytes=2000, max_tokens=4096)
    # $0.01 - 2064 prompt tokens at $1/M leaves room for 793 output tokens at $10/M.
    assert granted == 793 and reserved <= 0.01
    meter.record(2000, reserved, input_tokens=1500, cached_tokens=0, output_tokens=700)
    with pytest.raises(BudgetExhausted):
        meter.reserve(request_bytes=6000, max_tokens=4096)


def test_bound_uses_reported_usage_plus_growth():
    meter = BudgetMeter(Price(1.0, 1.0, 1.0), budget_usd=100)
    assert meter.prompt_token_bound(40_000) == 40_064
    meter.record(40_000, 1.0, input_tokens=10_000, cached_tokens=0, output_tokens=500, completion_bytes=2000)
    assert meter.prompt_token_bound(45_000) == 10_000 + 500 + 3000 + 64


@settings(max_examples=300, deadline=None)
@given(budget=st.floats(0.001, 2.0), max_tokens=st.integers(64, 16_000),
       steps=st.lists(st.tuples(st.integers(0, 200_000), st.floats(0.0, 1.0), st.floats(0.0, 1.0),
                                st.floats(0.0, 1.0)), max_size=40),
       price=st.sampled_from([Price(2.0, 0.5, 8.0), Price(0.4, 0.1, 1.6), Price(0.05, 0.005, 0.4)]))
def test_spend_never_exceeds_the_budget(budget, max_tokens, steps, price):
    """Whatever the API reports (up to the bounds a real call obeys), the sum never passes the budget."""
    meter = BudgetMeter(price, budget)
    request_bytes = 0
    for growth, prompt_share, cached_share, output_share in steps:
        request_bytes += growth
        try:
            granted, reserved = meter.reserve(request_bytes, max_tokens)
        except BudgetExhausted:
            break
        # A real call: at most one prompt token a byte (plus framing), at most `granted` output tokens.
        prompt_tokens = int(meter.prompt_token_bound(request_bytes) * prompt_share)
        output_tokens = int(granted * output_share)
        meter.record(request_bytes, reserved, prompt_tokens, int(prompt_tokens * cached_share), output_tokens,
                     completion_bytes=output_tokens)
        assert meter.calls[-1].cost_usd <= reserved + 1e-12
    assert meter.spent_usd <= budget + 1e-12
