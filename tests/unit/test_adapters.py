import json
from pathlib import Path

import pytest

from peers import events
from remediate.errors import UserError
from remediate.incident.adapters import detect
from remediate.incident.payload import from_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


def _dispatch(name: str):
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    assert len(payload) <= 10, "a client_payload has at most 10 top-level keys"
    return from_event("repository_dispatch", events.repository_dispatch(payload), {})


def test_pagerduty_v3_webhook():
    incident = _dispatch("pagerduty_v3")
    assert (incident.id, incident.service, incident.severity, incident.source) == (
        "PD-1234", "user-service", "P1", "pagerduty")
    assert incident.summary.startswith("Memory leak in UserService.process_queue()")
    assert dict(incident.links) == {"pagerduty": "https://acme.pagerduty.com/incidents/PGR0VU2"}


def test_alertmanager_with_the_diagnosis_in_annotations():
    incident = _dispatch("alertmanager")
    assert incident.id.startswith("UserServiceMemoryLeak-") and incident.source == "alertmanager"
    assert incident.suspect.files == ("app/users/service.py",)
    assert incident.suspect.functions == ("UserService.process_queue",)
    assert dict(incident.links)["runbook"] == "https://runbooks.example/user-service/memory"
    assert incident.id == _dispatch("alertmanager").id  # the same alert group is the same incident


def test_grafana_unified_alerting():
    incident = _dispatch("grafana")
    assert incident.source == "grafana" and incident.severity == "warning"
    assert incident.summary == "RSS of user-service grows without bound"
    assert dict(incident.links)["dashboard"] == "https://grafana.example/d/users"


def test_datadog_default_webhook():
    incident = _dispatch("datadog")
    assert (incident.id, incident.severity, incident.source) == ("DD-98765432", "P1", "datadog")


def test_canonical_payloads_pass_through_and_inputs_still_win():
    assert detect({"incident_id": "INC-1", "alerts": []}) is None
    payload = json.loads((FIXTURES / "pagerduty_v3.json").read_text())
    incident = from_event("repository_dispatch", {"action": "incident", "client_payload": payload},
                          {"incident-id": "INC-OVERRIDE"})
    assert incident.id == "INC-OVERRIDE" and incident.service == "user-service"


def test_a_recognised_but_broken_shape_is_a_user_error():
    with pytest.raises(UserError, match="pagerduty payload"):
        from_event("repository_dispatch", {"action": "incident", "client_payload": {
            "event": {"event_type": "incident.triggered", "data": {"service": "not-an-object"}}}}, {})
