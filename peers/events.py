"""Workflow events as GitHub delivers them: the envelopes are GitHub's own examples (npm
`@octokit/webhooks-examples` 7.6.1, repository renamed to acme/user-service, owned by the organization acme,
private, default branch main), checked against `@octokit/webhooks-schemas` by tests/meta/test_event_fixtures.py.
Tests fill in only the part a sender controls.

Where the examples came from: repository_dispatch and workflow_dispatch from their own examples;
issue_comment from `issue_comment` created (#3; none of GitHub's examples is on a pull request, so
`issue.pull_request` was added as GitHub sends it for one); pull_request_review from `pull_request_review`
submitted (#3); deployment_status from `deployment_status` created (#3, state success)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events"
REPO = "acme/user-service"
# The identifiers GitHub's examples carry, replaced wherever they occur (URLs included).
_COMMENT_ID, _COMMENT_PR = 492700400, 1
_REVIEW_ID, _REVIEW_PR, _REVIEW_SHA = 237895671, 2, "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
_DEPLOYMENT_ID, _DEPLOYMENT_SHA = 145988746, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"


@cache
def _envelope(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def _filled(name: str, replacements: dict[str, str], number: tuple[int, int] | None = None) -> dict[str, Any]:
    """The envelope with its example identifiers replaced everywhere; `number` = (old, new) pull number."""
    text = json.dumps(_envelope(name))
    for old, new in replacements.items():
        text = text.replace(old, new)
    if number:
        text = re.sub(rf"({re.escape(REPO)}/(?:issues|pulls|pull))/{number[0]}(?=[/\"#.])", rf"\g<1>/{number[1]}", text)
    return json.loads(text)


def _node_id(kind: str, number: int) -> str:
    """A global node id in GitHub's legacy form: base64 of "0<length of kind>:<kind><id>"."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def user(login: str, user_type: str = "User") -> dict[str, Any]:
    """A user as webhooks carry one. `user_type` is User, Bot or Organization; a bot's login ends in `[bot]`,
    and its page is its app's."""
    uid = int(hashlib.sha1(login.encode()).hexdigest()[:8], 16) % 10**8
    url = f"https://api.github.com/users/{login.replace('[', '%5B').replace(']', '%5D')}"
    html = f"https://github.com/apps/{login.removesuffix('[bot]')}" if user_type == "Bot" else f"https://github.com/{login}"
    return {"login": login, "id": uid, "node_id": _node_id(user_type, uid), "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "", "url": url, "html_url": html, "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs", "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events", "type": user_type, "site_admin": False}


def repository_dispatch(client_payload: dict[str, Any], action: str = "incident") -> dict[str, Any]:
    event = copy.deepcopy(_envelope("repository_dispatch"))
    event.update(action=action, client_payload=client_payload)
    return event


def workflow_dispatch(inputs: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(_envelope("workflow_dispatch"))
    event["inputs"] = inputs
    return event


def issue_comment(pr_number: int, body: str, login: str = "octocat", user_type: str = "User",
                  comment_id: int = _COMMENT_ID, author_association: str = "MEMBER") -> dict[str, Any]:
    """`issue_comment` created, on pull request `pr_number` (`issue.pull_request` is set), by `login`."""
    event = _filled("issue_comment", {str(_COMMENT_ID): str(comment_id)}, (_COMMENT_PR, pr_number))
    event["issue"]["number"] = pr_number
    author = user(login, user_type)
    event["comment"].update(id=comment_id, node_id=_node_id("IssueComment", comment_id), body=body, user=author,
                            author_association=author_association)
    event["sender"] = copy.deepcopy(author)
    return event


def pull_request_review(pr_number: int, head_ref: str, head_sha: str, state: str = "changes_requested",
                        body: str | None = "Keep the audit log, but bound it (a deque with a maxlen) instead of "
                                           "dropping it.",
                        login: str = "octocat", user_type: str = "User", review_id: int = _REVIEW_ID,
                        author_association: str = "MEMBER") -> dict[str, Any]:
    """`pull_request_review` submitted on pull `pr_number` whose head is `head_ref` at `head_sha`. `state` is
    the webhook's lowercase one: approved, changes_requested, commented (dismissed comes with its own action)."""
    event = _filled("pull_request_review", {_REVIEW_SHA: head_sha, str(_REVIEW_ID): str(review_id)},
                    (_REVIEW_PR, pr_number))
    pull = event["pull_request"]
    pull["number"] = pr_number
    pull["head"].update(ref=head_ref, label=f"{REPO.split('/')[0]}:{head_ref}", sha=head_sha)
    reviewer = user(login, user_type)
    event["review"].update(id=review_id, state=state, body=body, user=reviewer, commit_id=head_sha,
                           author_association=author_association)
    event["sender"] = copy.deepcopy(reviewer)
    return event


def deployment_status(sha: str, environment: str = "staging", state: str = "success",
                      deployment_id: int = _DEPLOYMENT_ID) -> dict[str, Any]:
    """`deployment_status` created: deployment `deployment_id` of `sha` to `environment` reached `state`
    (pending, queued, in_progress, waiting, success, failure, error)."""
    event = _filled("deployment_status", {_DEPLOYMENT_SHA: sha, str(_DEPLOYMENT_ID): str(deployment_id)})
    event["deployment"].update(id=deployment_id, sha=sha, environment=environment, original_environment=environment)
    event["deployment_status"].update(state=state, environment=environment)
    return event
