"""Prices and the budget meter. Pure arithmetic: nothing here talks to a network.

The meter never lets spend exceed the budget: before each call it reserves the worst case (an
upper bound on prompt tokens, all billed as uncached input, plus `max_tokens` of output) and
shrinks `max_tokens` to what remains. The prompt bound needs no tokenizer: a byte-level BPE token
covers at least one byte, so the request's UTF-8 size bounds its token count; once a call has
reported usage, its prompt plus completion tokens plus the bytes added since is a tighter bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from remediate.config import Config
from remediate.errors import UserError
from remediate.outcome import Reason, Stop

PRICES_AS_OF = "2026-11-01"

# USD per million tokens: (input, cached input, output). Exact names; dated snapshots map to their base.
PRICE_TABLE: dict[str, tuple[float, float, float]] = {
    "gpt-5": (1.25, 0.125, 10.00),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "o3": (2.00, 0.50, 8.00),
    "o4-mini": (1.10, 0.275, 4.40),
    "o3-mini": (1.10, 0.55, 4.40),
}
_DATED_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")
# Per-message framing the API adds beyond the JSON we send (role markers, tool schema wrapping).
_FRAMING_TOKENS = 64


@dataclass(frozen=True)
class Price:
    input: float
    cached_input: float
    output: float

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
        uncached = max(input_tokens - cached_tokens, 0)
        return (uncached * self.input + cached_tokens * self.cached_input + output_tokens * self.output) / 1e6


def price_for(model: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> Price | None:
    """Exact name, then a dated snapshot's base name; never a prefix guess."""
    overrides = overrides or {}
    names = [model, model.split("/", 1)[1]] if "/" in model else [model]
    snapshot = _DATED_SNAPSHOT.match(names[-1])
    if snapshot:
        names.append(snapshot.group("base"))
    for name in names:
        if name in overrides:
            o = overrides[name]
            if "input" not in o or "output" not in o:
                raise UserError("needs at least input and output prices per million tokens",
                                field=f"costs.prices.{name}")
            return Price(o["input"], o.get("cached_input", o["input"]), o["output"])
    for name in names:
        if name in PRICE_TABLE:
            return Price(*PRICE_TABLE[name])
    return None


@dataclass(frozen=True)
class CallCost:
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost_usd: float
    reserved_usd: float


class BudgetExhausted(Stop):
    """No useful call fits in what is left of the budget."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.BUDGET_EXHAUSTED, detail)


@dataclass
class BudgetMeter:
    price: Price
    budget_usd: float
    min_output_tokens: int = 256
    calls: list[CallCost] = field(default_factory=list)
    _last_prompt_tokens: int | None = None
    _last_prompt_bytes: int = 0

    @property
    def spent_usd(self) -> float:
        return sum(c.cost_usd for c in self.calls)

    @property
    def remaining_usd(self) -> float:
        return self.budget_usd - self.spent_usd

    def prompt_token_bound(self, request_bytes: int) -> int:
        bound = request_bytes + _FRAMING_TOKENS
        if self._last_prompt_tokens is not None:
            grown = max(request_bytes - self._last_prompt_bytes, 0)
            bound = min(bound, self._last_prompt_tokens + grown + _FRAMING_TOKENS)
        return bound

    def reserve(self, request_bytes: int, max_tokens: int) -> tuple[int, float]:
        """The max_tokens to request and the worst-case cost reserved, or BudgetExhausted."""
        prompt_bound = self.prompt_token_bound(request_bytes)
        prompt_cost = prompt_bound * self.price.input / 1e6
        left_for_output = self.remaining_usd - prompt_cost
        affordable = int(left_for_output * 1e6 / self.price.output) if self.price.output > 0 else max_tokens
        granted = min(max_tokens, affordable)
        if granted < self.min_output_tokens:
            raise BudgetExhausted(
                f"${self.remaining_usd:.4f} of ${self.budget_usd:.2f} left; the next call could cost "
                f"${prompt_cost + self.min_output_tokens * self.price.output / 1e6:.4f}")
        return granted, prompt_cost + granted * self.price.output / 1e6

    def record_failure(self, reserved_usd: float, maybe_billed: bool) -> CallCost:
        """An attempt that returned no usage: charged its reservation when the provider may have billed it
        (no answer came back), nothing when it answered with an error status."""
        cost = CallCost(0, 0, 0, reserved_usd if maybe_billed else 0.0, reserved_usd)
        self.calls.append(cost)
        return cost

    def record(self, request_bytes: int, reserved_usd: float, input_tokens: int, cached_tokens: int,
               output_tokens: int, completion_bytes: int = 0) -> CallCost:
        cost = CallCost(input_tokens, cached_tokens, output_tokens,
                        self.price.cost(input_tokens, cached_tokens, output_tokens), reserved_usd)
        self.calls.append(cost)
        # The next prompt holds this one plus the completion: anchor the bound on what was billed.
        self._last_prompt_tokens = input_tokens + output_tokens
        self._last_prompt_bytes = request_bytes + completion_bytes
        return cost


def price_of(config: Config) -> Price:
    """The model's price, or the one-line error that says where to give it."""
    price = price_for(config.llm.model, config.costs.prices)
    if price is None:
        raise UserError(f"no price is known for model {config.llm.model!r}", field="costs.prices",
                        hint=f"add costs.prices.{config.llm.api_model}: {{input: , cached_input: , output: }} "
                             "in USD per million tokens")
    return price
