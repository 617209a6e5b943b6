"""Payloads forwarded raw from common alerting sources, turned into the canonical payload. Pure.

PagerDuty v3 webhooks and Alertmanager/Grafana send fixed shapes; a small relay puts them inside
`client_payload` unchanged (docs/payload.md: "Sending an incident"). Datadog and Grafana can also build the
canonical payload themselves with a custom body, which needs no adapter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

Adapter = Callable[[Mapping[str, Any]], dict[str, Any]]


def _split(value: Any) -> list[str]:
    return [v.strip() for v in str(value).split(",") if v.strip()] if value else []


def _suspect(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """Alert rules can carry the diagnosis in annotations: suspect_files, suspect_functions, suspect_commit."""
    suspect = {"files": _split(annotations.get("suspect_files")),
               "functions": _split(annotations.get("suspect_functions"))}
    if annotations.get("suspect_commit"):
        suspect["commit"] = str(annotations["suspect_commit"])
    return suspect


def from_pagerduty(payload: Mapping[str, Any]) -> dict[str, Any]:
    """PagerDuty v3 webhook: {"event": {"event_type": "incident.triggered", "data": {incident}}}."""
    event = payload["event"]
    data = event.get("data") or {}
    service = (data.get("service") or {}).get("summary")
    priority = (data.get("priority") or {}).get("summary")
    number = data.get("number")
    return {
        "incident_id": f"PD-{number}" if number else str(data.get("id") or event.get("id")),
        "summary": data.get("title") or event.get("event_type", ""),
        "service": service,
        "severity": priority or data.get("urgency"),
        "links": {"pagerduty": data.get("html_url")} if data.get("html_url") else {},
        "source": "pagerduty",
    }


def from_alertmanager(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Alertmanager (and Grafana unified alerting, which adds title/message) webhook bodies."""
    labels = payload.get("commonLabels") or {}
    annotations = payload.get("commonAnnotations") or {}
    alerts = payload.get("alerts") or []
    first = alerts[0] if alerts else {}
    key = payload.get("groupKey") or first.get("fingerprint") or repr(sorted(labels.items()))
    grafana = "title" in payload or "orgId" in payload
    links = {name: url for name, url in (("alertmanager", payload.get("externalURL")),
                                         ("source", first.get("generatorURL")),
                                         ("runbook", annotations.get("runbook_url")),
                                         ("dashboard", first.get("dashboardURL")),
                                         ("panel", first.get("panelURL"))) if url}
    return {
        "incident_id": labels.get("incident_id") or
                       f"{labels.get('alertname', 'alert')}-{hashlib.sha256(str(key).encode()).hexdigest()[:10]}",
        "summary": annotations.get("summary") or annotations.get("description") or payload.get("title")
                   or labels.get("alertname", ""),
        "service": labels.get("service") or labels.get("job"),
        "severity": labels.get("severity"),
        "suspect": _suspect(annotations),
        "links": links,
        "source": "grafana" if grafana else "alertmanager",
    }


def from_datadog(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Datadog's default webhook body ($ID, $EVENT_TITLE, $EVENT_MSG, $LINK, $ALERT_PRIORITY …)."""
    return {
        "incident_id": f"DD-{payload.get('alert_id') or payload['id']}",
        "summary": payload.get("title") or payload.get("event_title", ""),
        "service": payload.get("service"),
        "severity": payload.get("alert_priority") or payload.get("priority"),
        "links": {"datadog": payload["link"]} if payload.get("link") else {},
        "source": "datadog",
    }


def detect(payload: Mapping[str, Any]) -> tuple[str, Adapter] | None:
    """Which adapter a payload needs; None for the canonical shape (or anything unrecognised)."""
    if "incident_id" in payload:
        return None
    event = payload.get("event")
    if isinstance(event, Mapping) and isinstance(event.get("data"), Mapping) and \
            str(event.get("event_type", "")).startswith("incident."):
        return "pagerduty", from_pagerduty
    if isinstance(payload.get("alerts"), list) and ("commonLabels" in payload or "groupKey" in payload):
        return "alertmanager", from_alertmanager
    if ("alert_id" in payload or "id" in payload) and "title" in payload and ("link" in payload or "body" in payload):
        return "datadog", from_datadog
    return None


def normalise(payload: Mapping[str, Any]) -> dict[str, Any]:
    found = detect(payload)
    if found is None:
        return dict(payload)
    _, adapter = found
    canonical = adapter(payload)
    return {k: v for k, v in canonical.items() if v not in (None, "", {}, [])}
