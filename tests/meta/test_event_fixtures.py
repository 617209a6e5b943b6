"""The events the tests feed the action are ones GitHub could deliver: every repository_dispatch and
workflow_dispatch event the suite builds validates against GitHub's webhook payload schemas (npm
`@octokit/webhooks-schemas`)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from peers import events, scenarios

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "npm" / "node_modules" / "@octokit" / "webhooks-schemas" / "schema.json"
PAYLOADS = sorted((ROOT / "tests" / "fixtures" / "payloads").glob("*.json"))


@cache
def validator(event_name: str) -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMAS.read_text())
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{event_name}$event",
                                       "definitions": schema["definitions"]})


def problems(event_name: str, event: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(event_name).iter_errors(event)]


@pytest.mark.parametrize("payload", [scenarios.payload("0" * 40), *(json.loads(p.read_text()) for p in PAYLOADS)],
                         ids=["canonical", *(p.stem for p in PAYLOADS)])
def test_repository_dispatch_events_match_githubs_schema(payload):
    assert problems("repository_dispatch", events.repository_dispatch(payload)) == []


def test_workflow_dispatch_event_matches_githubs_schema():
    event = events.workflow_dispatch({"incident-id": "INC-77", "summary": "leak", "dry-run": "true"})
    assert problems("workflow_dispatch", event) == []


def test_the_schema_check_rejects_what_github_would_never_send():
    event = events.repository_dispatch({"incident_id": "INC-1"})
    del event["sender"]
    event["client_payload"] = ["not", "an", "object"]
    found = problems("repository_dispatch", event)
    assert any("'sender' is a required property" in p for p in found)
    assert any(p.startswith("client_payload:") for p in found)
    assert problems("workflow_dispatch", {**events.workflow_dispatch({}), "inputs": "x"}) != []
