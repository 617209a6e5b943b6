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
from dataclasses import dataclass, replace
from typing import Any

from remediate.incident.payload import Incident, from_payload, valid_traceparent

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

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "trace_id": self.trace_id, "outcome": self.outcome, "reason": self.reason,
                "cost_usd": round(self.cost_usd, 6), "at": self.at, "note": self.note}


@dataclass(frozen=True)
class State:
    incident: Incident
    traceparent: str | None  # the first run's root span: later runs are part of its trace
    runs: tuple[RunEntry, ...] = ()

    @property
    def cost_usd(self) -> float:
        return round(sum(r.cost_usd for r in self.runs), 6)

    def with_run(self, entry: RunEntry) -> State:
        return replace(self, runs=(*self.runs, entry)[-MAX_RUNS:])

    def render(self) -> str:
        data = {"incident": self.incident.to_dict(), "traceparent": self.traceparent,
                "runs": [r.to_dict() for r in self.runs]}
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
                             note=str(item.get("note") or "")[:500]))
    return State(incident, valid_traceparent(data.get("traceparent")), tuple(runs[-MAX_RUNS:]))


_RUNS = re.compile(r"\n*<!-- remediate:runs -->.*?<!-- /remediate:runs -->\n*", re.S)


def with_runs_table(body: str, state: State) -> str:
    """The description with its table of the incident's runs replaced (or added before the marker)."""
    rows = ["<!-- remediate:runs -->", "### Runs on this incident", "",
            "| run | outcome | reason | cost (USD) | trace | note |", "|---|---|---|---|---|---|"]
    for entry in state.runs:
        note = entry.note.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace("`", "'")[:120]
        rows.append(f"| {entry.kind} | {entry.outcome} | {entry.reason} | {entry.cost_usd:.4f} | "
                    f"`{entry.trace_id}` | {note} |")
    rows += ["", f"Incident total: ${state.cost_usd:.4f}", "<!-- /remediate:runs -->"]
    stripped = _RUNS.sub("\n\n", _MARKER.sub("", body)).rstrip()
    return f"{stripped}\n\n" + "\n".join(rows) + "\n"


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
    merged = replace(new, runs=(*old.runs, *new.runs)[-MAX_RUNS:], traceparent=old.traceparent or new.traceparent)
    return replace_in(with_runs_table(new_body, merged), merged)
