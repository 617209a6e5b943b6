"""The events the tests feed the action are ones GitHub could deliver: every repository_dispatch,
workflow_dispatch, issue_comment, pull_request_review and deployment_status event the suite builds validates
against GitHub's webhook payload schemas (npm `@octokit/webhooks-schemas`)."""

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
    """`repository_dispatch` (an event with a single shape) or `issue_comment$created` (an event and action)."""
    schema = json.loads(SCHEMAS.read_text())
    definition = event_name if "$" in event_name else f"{event_name}$event"
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]})


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


BOT = {"login": "dependabot[bot]", "user_type": "Bot", "author_association": "NONE"}


@pytest.mark.parametrize("kwargs", [{}, {"login": "alice", "author_association": "COLLABORATOR"}, BOT,
                                    {"comment_id": 1_100_000_001, "author_association": "OWNER"}],
                         ids=["default", "collaborator", "bot", "seeded-id"])
def test_issue_comment_events_on_a_pull_request_match_githubs_schema(kwargs):
    event = events.issue_comment(7, "/remediate retry", **kwargs)
    assert problems("issue_comment$created", event) == []
    assert event["issue"]["number"] == 7
    assert event["issue"]["pull_request"]["url"] == "https://api.github.com/repos/acme/user-service/pulls/7"
    assert event["comment"]["user"] == event["sender"] and event["comment"]["body"] == "/remediate retry"
    assert str(event["comment"]["id"]) in event["comment"]["url"] and "/pull/1" not in json.dumps(event)


@pytest.mark.parametrize(("state", "kwargs"), [("changes_requested", {}), ("approved", {"body": None}),
                                               ("commented", {"login": "renovate[bot]", "user_type": "Bot",
                                                              "author_association": "NONE"})],
                         ids=["changes-requested", "approved-without-body", "bot-comment"])
def test_pull_request_review_events_match_githubs_schema(state, kwargs):
    sha = "1" * 40
    event = events.pull_request_review(12, "hotfix/INC-1234", sha, state=state, review_id=99, **kwargs)
    assert problems("pull_request_review$submitted", event) == []
    assert event["review"]["state"] == state and event["review"]["commit_id"] == sha
    head = event["pull_request"]["head"]
    assert (head["ref"], head["sha"], head["label"]) == ("hotfix/INC-1234", sha, "acme:hotfix/INC-1234")
    assert event["pull_request"]["number"] == 12 and event["review"]["pull_request_url"].endswith("/pulls/12")


@pytest.mark.parametrize(("state", "environment"), [("success", "staging"), ("failure", "production"),
                                                    ("in_progress", "staging")])
def test_deployment_status_events_match_githubs_schema(state, environment):
    event = events.deployment_status("2" * 40, environment=environment, state=state, deployment_id=1_500_000_001)
    assert problems("deployment_status$created", event) == []
    assert (event["deployment"]["sha"], event["deployment"]["environment"]) == ("2" * 40, environment)
    assert (event["deployment_status"]["state"], event["deployment_status"]["environment"]) == (state, environment)
    assert event["deployment_status"]["deployment_url"].endswith("/deployments/1500000001")


def test_the_new_envelopes_name_the_repository_the_tests_use():
    for event in (events.issue_comment(1, "x"), events.pull_request_review(1, "b", "3" * 40),
                  events.deployment_status("3" * 40)):
        text = json.dumps(event)
        assert event["repository"]["full_name"] == "acme/user-service"
        assert event["repository"]["owner"]["login"] == "acme" and event["repository"]["default_branch"] == "main"
        assert "Hello-World" not in text and "master" not in text


def test_the_schema_check_rejects_broken_comment_review_and_deployment_events():
    event = events.issue_comment(7, "/remediate retry")
    del event["comment"]["user"]
    assert any("'user' is a required property" in p for p in problems("issue_comment$created", event))
    review = events.pull_request_review(7, "b", "4" * 40, state="CHANGES_REQUESTED")  # the REST API's spelling
    assert any(p.startswith("review/state:") for p in problems("pull_request_review$submitted", review))
    deployment = events.deployment_status("4" * 40, state="exploded")
    assert any(p.startswith("deployment_status/state:") for p in problems("deployment_status$created", deployment))
