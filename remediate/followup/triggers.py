"""Whether a follow-up event asks anything of remediate, pure: a review request on a PR (issue_comment,
pull_request_review) and a successful deployment (deployment_status). What is not for us is a `skip`:
outcome `skipped`, exit 0, a log line and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediate.config import ReviewConfig, ValidationConfig
from remediate.outcome import Outcome, Reason, Stop, stop

MAX_INSTRUCTION_CHARS = 4000


def skip(reason: Reason, detail: str) -> Stop:
    return stop(Outcome.SKIPPED, reason, detail)


@dataclass(frozen=True)
class ReviewAsk:
    event: str
    pr_number: int
    author: str
    instruction: str
    comment_id: int | None  # the comment to react to (a review has none the API can react to)


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def is_bot(user: Any) -> bool:
    login = str(_get(user, "login") or "")
    return _get(user, "type") == "Bot" or login.endswith("[bot]")


def review_ask(event_name: str, event: Mapping[str, Any], config: ReviewConfig) -> ReviewAsk:
    """The review request an event carries, or a skip saying why there is none."""
    if event_name == "issue_comment":
        if event.get("action") != "created":
            raise skip(Reason.NOT_TRIGGERED, f"issue_comment {event.get('action')!r}: only new comments ask")
        if not _get(event, "issue", "pull_request"):
            raise skip(Reason.NOT_TRIGGERED, "the comment is on an issue, not on a pull request")
        body = str(_get(event, "comment", "body") or "").strip()
        command = config.command
        if not body.startswith(command) or body[len(command):len(command) + 1] not in ("", " ", "\n", "\t", "\r"):
            raise skip(Reason.NOT_TRIGGERED, f"the comment does not start with {command}")
        user = _get(event, "comment", "user")
        number, comment_id = _get(event, "issue", "number"), _get(event, "comment", "id")
        instruction = body[len(command):].strip()
        if not instruction:
            raise skip(Reason.NOT_TRIGGERED, f"{command} without an instruction: write what to change after it")
    elif event_name == "pull_request_review":
        review = _get(event, "review")
        state = str(_get(review, "state") or "").lower()
        if event.get("action") != "submitted" or state != "changes_requested":
            raise skip(Reason.NOT_TRIGGERED, f"a review {event.get('action')} with state {state or 'none'}: only a "
                                             "submitted review that requests changes asks")
        if not config.on_changes_requested:
            raise skip(Reason.NOT_TRIGGERED, "review.on_changes_requested is off: reviews do not start runs")
        user = _get(review, "user")
        number, comment_id = _get(event, "pull_request", "number"), None
        instruction = str(_get(review, "body") or "").strip() or "The review requests changes; see its comments."
    else:
        raise skip(Reason.NOT_TRIGGERED, f"{event_name} is not a review event")
    if not isinstance(number, int) or isinstance(number, bool):
        raise skip(Reason.NOT_TRIGGERED, "the event names no pull request number")
    login = str(_get(user, "login") or "")
    if not login or is_bot(user):
        raise skip(Reason.NOT_AUTHORIZED, f"{login or 'an unknown user'} is a bot: bots do not start runs")
    return ReviewAsk(event_name, number, login, instruction[:MAX_INSTRUCTION_CHARS],
                     comment_id if isinstance(comment_id, int) and not isinstance(comment_id, bool) else None)


@dataclass(frozen=True)
class Deployed:
    environment: str
    sha: str
    deployment_id: int | None


def deployed(event: Mapping[str, Any], config: ValidationConfig) -> Deployed:
    """The successful deployment to a validated environment the event reports, or a skip."""
    state = str(_get(event, "deployment_status", "state") or "")
    environment = str(_get(event, "deployment", "environment") or _get(event, "deployment_status", "environment")
                      or "")
    sha = str(_get(event, "deployment", "sha") or "")
    if state != "success":
        raise skip(Reason.NOT_TRIGGERED, f"deployment status {state or 'unknown'}: only a successful deployment "
                                         "is validated")
    if environment not in config.environments:
        raise skip(Reason.NOT_TRIGGERED, f"environment {environment!r} is not validated (validation.environment: "
                                         f"{', '.join(config.environments)})")
    if not (7 <= len(sha) <= 64 and all(c in "0123456789abcdef" for c in sha.lower())):
        raise skip(Reason.NOT_TRIGGERED, "the deployment names no commit SHA")
    deployment_id = _get(event, "deployment", "id")
    return Deployed(environment, sha.lower(),
                    deployment_id if isinstance(deployment_id, int) and not isinstance(deployment_id, bool) else None)
