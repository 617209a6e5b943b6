"""Workflow events as GitHub delivers them: the envelopes are GitHub's own examples (npm
`@octokit/webhooks-examples`, repository renamed), checked against `@octokit/webhooks-schemas` by
tests/meta/test_event_fixtures.py. Tests fill in only the part an incident sender controls."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events"


@cache
def _envelope(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def repository_dispatch(client_payload: dict[str, Any], action: str = "incident") -> dict[str, Any]:
    event = copy.deepcopy(_envelope("repository_dispatch"))
    event.update(action=action, client_payload=client_payload)
    return event


def workflow_dispatch(inputs: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(_envelope("workflow_dispatch"))
    event["inputs"] = inputs
    return event
