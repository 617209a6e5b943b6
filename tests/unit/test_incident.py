import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediate.errors import UserError
from remediate.incident.payload import from_event, from_payload, sanitise_ref_component, valid_traceparent

CANONICAL = {
    "incident_id": "INC-1234",
    "summary": "Memory leak in UserService.process_queue() caused by commit abc123",
    "service": "user-service", "severity": "SEV2",
    "suspect": {"files": ["app/users/service.py"], "functions": ["UserService.process_queue"], "commit": "abc123"},
    "links": {"rca": "https://aiops.example/rca", "dashboard": "https://grafana.example/d/1"},
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "source": "datadog",
}


def test_repository_dispatch_canonical_payload():
    incident = from_event("repository_dispatch", {"action": "incident", "client_payload": CANONICAL}, {})
    assert incident.id == "INC-1234"
    assert incident.suspect.files == ("app/users/service.py",)
    assert incident.suspect.functions == ("UserService.process_queue",)
    assert incident.suspect.commit == "abc123"
    assert dict(incident.links) == CANONICAL["links"]
    assert incident.traceparent == CANONICAL["traceparent"]
    assert incident.trigger == "repository_dispatch"


def test_workflow_dispatch_and_cli_give_the_same_incident():
    event = {"inputs": {"incident-id": "INC-9", "summary": "leak"}}
    dispatched = from_event("workflow_dispatch", event, {})
    cli = from_event("cli", {}, {"incident-id": "INC-9", "summary": "leak"})
    called = from_event("workflow_call", {}, {"incident-id": "INC-9", "summary": "leak"})
    assert (dispatched.id, dispatched.summary) == (cli.id, cli.summary) == (called.id, called.summary)


def test_inputs_override_the_payload():
    incident = from_event("repository_dispatch", {"action": "incident", "client_payload": CANONICAL},
                          {"summary": "override", "suspect-files": "a.py, b.py"})
    assert incident.summary == "override"
    assert incident.suspect.files == ("a.py", "b.py")
    assert incident.suspect.commit == "abc123"


@pytest.mark.parametrize("payload", [{}, {"incident_id": ""}, {"incident_id": "   "}, {"summary": "x"}])
def test_missing_incident_id_is_a_user_error(payload):
    with pytest.raises(UserError) as err:
        from_payload(payload, trigger="repository_dispatch")
    assert err.value.one_line().startswith("client_payload.incident_id: is required")
    assert "\n" not in err.value.one_line()


@pytest.mark.parametrize(("payload", "field"), [
    ({"incident_id": ["x"]}, "client_payload.incident_id"),
    ({"incident_id": "x", "suspect": "app.py"}, "client_payload.suspect"),
    ({"incident_id": "x", "suspect": {"files": {"a": 1}}}, "client_payload.suspect.files"),
    ({"incident_id": "x", "suspect": {"commit": "; rm -rf /"}}, "client_payload.suspect.commit"),
    ({"incident_id": "x", "links": ["https://a"]}, "client_payload.links"),
])
def test_wrong_types_name_the_field(payload, field):
    with pytest.raises(UserError) as err:
        from_payload(payload, trigger="repository_dispatch")
    assert err.value.field == field


def test_other_event_types_and_oversized_payloads_are_refused():
    with pytest.raises(UserError, match=r"repository_dispatch\.action"):
        from_event("repository_dispatch", {"action": "deploy", "client_payload": CANONICAL}, {})
    too_many = {f"k{i}": i for i in range(11)} | {"incident_id": "x"}
    with pytest.raises(UserError, match="at most 10"):
        from_event("repository_dispatch", {"action": "incident", "client_payload": too_many}, {})
    assert from_event("repository_dispatch", {"action": "page", "client_payload": CANONICAL}, {},
                      event_type="page").id == "INC-1234"


def test_only_web_links_are_kept():
    incident = from_payload({"incident_id": "x", "links": {"a": "javascript:alert(1)", "b": "https://ok.example/x",
                                                           "c": "file:///etc/passwd"}}, trigger="cli")
    assert dict(incident.links) == {"b": "https://ok.example/x"}


@pytest.mark.parametrize("value", [
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "garbage", None, 42])
def test_invalid_traceparents_are_ignored(value):
    assert valid_traceparent(value) is None


@pytest.mark.parametrize(("raw", "expected"), [("INC-1234", "INC-1234"), ("PD.Q1W2E3", "PD.Q1W2E3")])
def test_clean_ids_stay_readable(raw, expected):
    assert sanitise_ref_component(raw) == expected


@pytest.mark.parametrize("raw", ["../../etc", "a..b", "x.lock", "-rf", "$(reboot)", "a b/c", "@{-1}", "refs/heads/main",
                                 "", "...", "a\nb", "INC~1^2:3"])
def test_hostile_ids_become_safe_distinct_slugs(raw):
    slug = sanitise_ref_component(raw)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", slug)
    assert ".." not in slug and not slug.endswith(".lock")
    assert slug != sanitise_ref_component(raw + "x")


@given(st.text(max_size=200))
def test_any_id_gives_a_valid_ref_component(raw):
    slug = sanitise_ref_component(raw)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", slug)
    assert ".." not in slug and not slug.endswith((".", ".lock"))
