"""The incident's state, kept in the hotfix PR's description as a hidden, versioned marker, so later runs (a
review, a staging validation) continue the incident: what it is, its trace, what each run did and spent.

    <!-- remediate:state v1 <base64 of JSON> -->

Base64 keeps the JSON from closing the comment. The description can be edited by the PR's author (us) and by
people with write access, the same people who may trigger a run; anything else about it is checked again:
the marker is parsed strictly, its incident id must match the trailer on the branch's commits, and numbers
are numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from remediate.deliver.github import GitHub
from remediate.incident.payload import Incident, from_payload, valid_traceparent
from remediate.inert import inert

VERSION = 1
_MARKER = re.compile(r"<!-- remediate:state v(\d+) ([A-Za-z0-9+/=]{1,60000}) -->")
MAX_RUNS = 50


class MarkerError(ValueError):
    pass


@dataclass(frozen=True)
class RunEntry:
    """One run of the incident, as the PR records it."""
    kind: str  # remediate, review, validation
    trace_id: str
    outcome: str
    reason: str
    cost_usd: float
    at: str
    note: str = ""  # the review's instruction, the validation verdict
    summary: str = ""  # what the model said the change does (its finish summary)
    tests: str = ""  # the affected tests' one-line result

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "trace_id": self.trace_id, "outcome": self.outcome, "reason": self.reason,
                "cost_usd": round(self.cost_usd, 6), "at": self.at, "note": self.note, "summary": self.summary,
                "tests": self.tests}


@dataclass(frozen=True)
class State:
    incident: Incident
    traceparent: str | None  # the first run's root span: later runs are part of its trace
    runs: tuple[RunEntry, ...] = ()  # the newest MAX_RUNS
    spent_usd: float = 0.0  # what every run cost, those no longer listed too

    @property
    def cost_usd(self) -> float:
        return round(max(self.spent_usd, sum(r.cost_usd for r in self.runs)), 6)

    def with_run(self, entry: RunEntry) -> State:
        return replace(self, runs=(*self.runs, entry)[-MAX_RUNS:], spent_usd=self.cost_usd + entry.cost_usd)

    def render(self) -> str:
        data = {"incident": self.incident.to_dict(), "traceparent": self.traceparent,
                "runs": [r.to_dict() for r in self.runs], "spent_usd": self.cost_usd}
        blob = base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
        return f"<!-- remediate:state v{VERSION} {blob} -->"


def find(body: str | None) -> State | None:
    """The state in a PR description; None when there is no marker. A marker that does not parse is an error."""
    found = _MARKER.findall(body or "")
    if not found:
        return None
    version, blob = found[-1]
    if int(version) != VERSION:
        raise MarkerError(f"the pull request's remediate marker is version {version}; this remediate reads "
                          f"version {VERSION}")
    try:
        data = json.loads(base64.b64decode(blob, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MarkerError("the pull request's remediate marker is not valid base64 JSON") from None
    return _state(data)


def _state(data: Any) -> State:
    if not isinstance(data, dict) or not isinstance(data.get("incident"), dict):
        raise MarkerError("the pull request's remediate marker has no incident")
    raw = data["incident"]
    payload = {"incident_id": raw.get("id"), "summary": raw.get("summary"), "service": raw.get("service"),
               "severity": raw.get("severity"), "suspect": raw.get("suspect"), "links": raw.get("links"),
               "traceparent": raw.get("traceparent"), "source": raw.get("source"),
               "metrics": raw.get("metrics")}
    try:
        incident = from_payload({k: v for k, v in payload.items() if v is not None}, trigger="marker",
                                where="marker.incident")
    except Exception as exc:  # UserError: the marker was edited into something no run wrote
        raise MarkerError(f"the pull request's remediate marker holds a bad incident: {exc}") from None
    runs = []
    for item in data.get("runs") or []:
        if not isinstance(item, dict):
            raise MarkerError("the pull request's remediate marker has a run that is not an object")
        cost = item.get("cost_usd")
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 <= cost < 1e6:
            raise MarkerError("the pull request's remediate marker has a run without a cost")
        runs.append(RunEntry(*(str(item.get(k) or "")[:500] for k in ("kind", "trace_id", "outcome", "reason")),
                             cost_usd=float(cost), at=str(item.get("at") or "")[:40],
                             note=str(item.get("note") or "")[:500], summary=str(item.get("summary") or "")[:1000],
                             tests=str(item.get("tests") or "")[:300]))
    spent = data.get("spent_usd", 0.0)
    if isinstance(spent, bool) or not isinstance(spent, (int, float)) or not 0 <= spent < 1e6:
        raise MarkerError("the pull request's remediate marker has a total cost that is not a number")
    return State(incident, valid_traceparent(data.get("traceparent")), tuple(runs[-MAX_RUNS:]), float(spent))


_RUNS = re.compile(r"\n*<!-- remediate:runs -->.*?<!-- /remediate:runs -->\n*", re.S)


def with_runs_table(body: str, state: State) -> str:
    """The description with its table of the incident's runs replaced (or added before the marker)."""
    rows = ["<!-- remediate:runs -->", "### Runs on this incident", "",
            "| run | outcome | reason | cost (USD) | trace | note |", "|---|---|---|---|---|---|"]
    for entry in state.runs:
        note = inert(" ".join(entry.note.split())).replace("|", "\\|")[:160]
        rows.append(f"| {_word(entry.kind)} | {_word(entry.outcome)} | {_word(entry.reason)} | {entry.cost_usd:.4f} | "
                    f"`{_word(entry.trace_id)}` | {note} |")
    rows += ["", f"Incident total: ${state.cost_usd:.4f}", "<!-- /remediate:runs -->"]
    stripped = _RUNS.sub("\n\n", _MARKER.sub("", body)).rstrip()
    return f"{stripped}\n\n" + "\n".join(rows) + "\n"


def _word(text: str) -> str:
    """A marker field shown in the table: the characters an outcome, a reason or a trace ID has, nothing else."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", text)[:60]


def record(github: GitHub, number: int, entry: RunEntry, fallback: State, redact: Callable[[str], str]) -> State:
    """`entry` added to the PR's description as it is now: runs another run recorded meanwhile, and edits people
    made, stay. Returns the state written."""
    fresh = github.pull(number)
    try:
        state = find(fresh.body)
    except MarkerError:
        state = None
    if state is None or state.incident.id != fallback.incident.id:
        state = fallback
    after = state.with_run(entry)
    github.edit_body(number, redact(replace_in(with_runs_table(fresh.body, after), after)))
    return after


def replace_in(body: str, state: State) -> str:
    """The description with its marker replaced by (or, without one, followed by) the state's."""
    stripped = _MARKER.sub("", body).rstrip()
    return f"{stripped}\n\n{state.render()}\n"


def carried(old_body: str, new_body: str) -> str:
    """A re-run's description: its own state, after the runs the previous description recorded for the same
    incident (their cost stays the incident's)."""
    try:
        old, new = find(old_body), find(new_body)
    except MarkerError:
        return new_body
    if old is None or new is None or old.incident.id != new.incident.id:
        return new_body
    merged = replace(new, runs=(*old.runs, *new.runs)[-MAX_RUNS:], traceparent=old.traceparent or new.traceparent,
                     spent_usd=old.cost_usd + new.cost_usd)
    return replace_in(with_runs_table(new_body, merged), merged)
