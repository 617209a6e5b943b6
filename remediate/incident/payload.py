"""The incident: one normalised value from whatever event carried it. Pure; no I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from remediate.errors import UserError
from remediate.incident.adapters import detect, normalise

MAX_PAYLOAD_KEYS = 10
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_MAX_TEXT = 4000
_MAX_LIST = 20


@dataclass(frozen=True)
class Suspect:
    files: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    commit: str | None = None


@dataclass(frozen=True)
class Incident:
    id: str
    summary: str = ""
    service: str | None = None
    severity: str | None = None
    suspect: Suspect = field(default_factory=Suspect)
    links: tuple[tuple[str, str], ...] = ()
    traceparent: str | None = None
    source: str | None = None
    trigger: str = "cli"
    metrics: tuple[tuple[str, float], ...] = ()  # the incident's values by signal name, for staging validation

    @property
    def branch_slug(self) -> str:
        return sanitise_ref_component(self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "summary": self.summary,
            "service": self.service,
            "severity": self.severity,
            "suspect": {"files": list(self.suspect.files), "functions": list(self.suspect.functions),
                        "commit": self.suspect.commit},
            "links": dict(self.links),
            "traceparent": self.traceparent,
            "source": self.source,
            "trigger": self.trigger,
            "metrics": dict(self.metrics),
        }


def sanitise_ref_component(raw: str) -> str:
    """A git-ref-safe, shell-inert slug for an untrusted id; a hash suffix keeps distinct ids distinct."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", raw)
    slug = re.sub(r"\.{2,}", ".", slug)
    slug = re.sub(r"-{2,}", "-", slug).strip("._-")
    if slug.lower().endswith(".lock"):
        slug = slug[: -len(".lock")]
    slug = slug[:60].strip("._-")
    if slug != raw or not slug:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        slug = f"{slug}-{digest}" if slug else f"incident-{digest}"
    return slug


def _text(value: Any, where: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise UserError("is required", field=where,
                            hint="send it in client_payload.incident_id or the incident-id input; raw PagerDuty v3, "
                                 "Alertmanager, Grafana and Datadog webhook bodies are recognised too")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UserError(f"expected a string, got {type(value).__name__}", field=where)
    text = str(value).strip()
    if required and not text:
        raise UserError("is required", field=where)
    return text[:_MAX_TEXT]


def _text_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise UserError(f"expected a list of strings, got {type(value).__name__}", field=where)
    items = [_text(v, f"{where}[{i}]") for i, v in enumerate(value[:_MAX_LIST])]
    return tuple(i for i in items if i)


def _links(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise UserError(f"expected an object of name -> URL, got {type(value).__name__}", field=where)
    # Only web links: anything else (javascript:, file:) would end up clickable in a PR body.
    return tuple((str(k)[:64], str(v)[:2000]) for k, v in list(value.items())[:_MAX_LIST]
                 if isinstance(v, str) and re.match(r"^https?://\S+$", v))


def _metrics(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise UserError(f"expected an object of signal name to number, got {type(value).__name__}", field=where)
    metrics = []
    for name, number in list(value.items())[:_MAX_LIST]:
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number != number:
            raise UserError(f"expected a number, got {number!r}", field=f"{where}.{str(name)[:60]}")
        metrics.append((str(name)[:60], float(number)))
    return tuple(metrics)


def valid_traceparent(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(0)


def from_payload(payload: Any, *, trigger: str, where: str = "client_payload") -> Incident:
    """Normalise the canonical payload (docs/payload.md) into an Incident."""
    if not isinstance(payload, Mapping):
        raise UserError(f"expected a JSON object, got {type(payload).__name__}", field=where)
    suspect = payload.get("suspect") or {}
    if not isinstance(suspect, Mapping):
        raise UserError(f"expected an object, got {type(suspect).__name__}", field=f"{where}.suspect")
    commit = _text(suspect.get("commit"), f"{where}.suspect.commit")
    if commit is not None and not re.fullmatch(r"[0-9A-Fa-f]{4,64}", commit):
        raise UserError("expected a commit SHA (4 to 64 hex digits)", field=f"{where}.suspect.commit")
    return Incident(
        id=_text(payload.get("incident_id"), f"{where}.incident_id", required=True) or "",
        summary=_text(payload.get("summary"), f"{where}.summary") or "",
        service=_text(payload.get("service"), f"{where}.service"),
        severity=_text(payload.get("severity"), f"{where}.severity"),
        suspect=Suspect(
            files=_text_list(suspect.get("files"), f"{where}.suspect.files"),
            functions=_text_list(suspect.get("functions"), f"{where}.suspect.functions"),
            commit=commit,
        ),
        links=_links(payload.get("links"), f"{where}.links"),
        traceparent=valid_traceparent(payload.get("traceparent")),
        source=_text(payload.get("source"), f"{where}.source"),
        trigger=trigger,
        metrics=_metrics(payload.get("metrics"), f"{where}.metrics"),
    )


def from_event(event_name: str, event: Mapping[str, Any], inputs: Mapping[str, str],
               *, event_type: str = "incident") -> Incident:
    """Build the Incident from a GitHub event plus action inputs (inputs override the event)."""
    if event_name == "repository_dispatch":
        action = event.get("action")
        if action != event_type:
            raise UserError(f"event type {action!r} is not {event_type!r}", field="repository_dispatch.action",
                            hint="dispatch with event_type set to the configured incident event type")
        payload = event.get("client_payload")
        if payload is None:
            payload = {}
        if isinstance(payload, Mapping) and len(payload) > MAX_PAYLOAD_KEYS:
            raise UserError(f"has {len(payload)} top-level keys; GitHub allows at most {MAX_PAYLOAD_KEYS}",
                            field="client_payload")
        if isinstance(payload, Mapping):
            try:
                payload = normalise(payload)
            except (KeyError, TypeError, AttributeError) as exc:
                raise UserError(f"looks like a {detect(payload)[0]} payload but lacks {exc}",  # type: ignore[index]
                                field="client_payload") from None
            _apply_inputs(payload, inputs)
        return from_payload(payload, trigger=event_name)
    if event_name in ("workflow_dispatch", "workflow_call"):
        # workflow_call passes inputs through the calling step's `with:`; the event body is the caller's.
        raw_inputs = event.get("inputs") if event_name == "workflow_dispatch" else None
        payload: dict[str, Any] = {}
        if isinstance(raw_inputs, Mapping):
            payload["incident_id"] = raw_inputs.get("incident-id") or raw_inputs.get("incident_id")
            payload["summary"] = raw_inputs.get("summary")
        _apply_inputs(payload, inputs)
        return from_payload(payload, trigger=event_name, where="inputs")
    payload = {}
    _apply_inputs(payload, inputs)
    return from_payload(payload, trigger=event_name or "cli", where="inputs")


def _apply_inputs(payload: dict[str, Any], inputs: Mapping[str, str]) -> None:
    if inputs.get("incident-id"):
        payload["incident_id"] = inputs["incident-id"]
    if inputs.get("summary"):
        payload["summary"] = inputs["summary"]
    suspect = dict(payload.get("suspect") or {}) if isinstance(payload.get("suspect"), Mapping) else None
    for key in ("files", "functions"):
        if inputs.get(f"suspect-{key}"):
            suspect = suspect if suspect is not None else {}
            suspect[key] = [s.strip() for s in inputs[f"suspect-{key}"].split(",") if s.strip()]
    if inputs.get("suspect-commit"):
        suspect = suspect if suspect is not None else {}
        suspect["commit"] = inputs["suspect-commit"]
    if suspect is not None:
        payload["suspect"] = suspect
