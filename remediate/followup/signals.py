"""Staging signals, pure: the threshold a value must meet, reading a number from an MCP answer, and the
verdict from the samples taken. No I/O; the watch loop (validation.py) feeds it."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from remediate.config import comparison

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


class Verdict(StrEnum):
    RECOVERED = "recovered"
    NOT_RECOVERED = "not_recovered"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Threshold:
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        return cls(*comparison(text))

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


class Unreadable(Exception):
    """The answer holds no number where the signal says to look."""


def number(raw: Any) -> float:
    """A finite float from what a JSONPath found or a regex matched; bools and text that is no number are not."""
    if isinstance(raw, bool) or raw is None:
        raise Unreadable(f"found {raw!r}, not a number")
    if isinstance(raw, (int, float)):
        try:
            value = float(raw)
        except OverflowError:
            raise Unreadable("found an integer too large for a number") from None
    elif isinstance(raw, str):
        try:
            value = float(raw.strip().replace("_", ""))
        except ValueError:
            raise Unreadable(f"found {raw[:40]!r}, not a number") from None
    else:
        raise Unreadable(f"found a {type(raw).__name__}, not a number")
    if not math.isfinite(value):
        raise Unreadable(f"found {value}, not a finite number")
    return value


def read_json(path: str, structured: Any) -> float:
    import jsonpath

    if structured is None:
        raise Unreadable("the answer has no structured content for the JSONPath")
    try:
        found = jsonpath.findall(path, structured)
    except Exception as exc:  # nesting deeper than the JSONPath walker goes, and the like: a hostile answer
        raise Unreadable(f"the JSONPath could not be applied to the answer ({type(exc).__name__})") from None
    if not found:
        raise Unreadable(f"{path} matches nothing in the answer")
    return number(found[0])


def read_text(pattern: str, text: str) -> float:
    import re2

    match = re2.search(pattern, text[:200_000])
    if match is None:
        raise Unreadable("the pattern matches nothing in the answer's text")
    return number(match.group(1) if match.re.groups else match.group(0))


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the watch began
    value: float | None  # None: could not be read
    healthy: bool | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at_seconds": round(self.at, 3), "value": self.value, "healthy": self.healthy, "error": self.error}


def verdict(samples: Sequence[Sample], consecutive: int) -> Verdict:
    """recovered: the last `consecutive` samples were all read and healthy. not_recovered: one of them was read
    and unhealthy. unknown: fewer were taken, or one of them could not be read (and none was unhealthy)."""
    last = list(samples[-consecutive:])
    if any(s.healthy is False for s in last):
        return Verdict.NOT_RECOVERED
    if len(last) < consecutive or any(s.healthy is None for s in last):
        return Verdict.UNKNOWN
    return Verdict.RECOVERED


def overall(verdicts: Sequence[Verdict]) -> Verdict:
    """One unhealthy signal is a failed fix whatever the others say; an unreadable one leaves it unknown."""
    if not verdicts:
        return Verdict.UNKNOWN
    if Verdict.NOT_RECOVERED in verdicts:
        return Verdict.NOT_RECOVERED
    return Verdict.UNKNOWN if Verdict.UNKNOWN in verdicts else Verdict.RECOVERED


_PLACEHOLDER = re.compile(r"\{(service|incident_id|environment)\}")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._/-]{1,100}$")


def fill(arguments: Any, values: dict[str, str | None]) -> Any:
    """The signal's arguments with {service}, {incident_id} and {environment} filled in strings, at any depth;
    other braces (a Datadog query's own `{service:x}` filter) are left alone. The values come from the incident
    payload: one that could change the query's meaning (a comma, a brace, a space) is Unreadable, not used."""
    if isinstance(arguments, str):
        def value(match: re.Match[str]) -> str:
            found = values.get(match[1])
            if found is None or not _SAFE_VALUE.match(found) or ".." in found:
                raise Unreadable(f"{{{match[1]}}} is {'not known' if found is None else 'not a plain name'} for "
                                 "this incident, so the query cannot be filled in")
            return found
        return _PLACEHOLDER.sub(value, arguments)
    if isinstance(arguments, dict):
        return {k: fill(v, values) for k, v in arguments.items()}
    if isinstance(arguments, list):
        return [fill(v, values) for v in arguments]
    return arguments
