"""Escalation to humans: one GitHub issue per incident, carrying the full context."""

from __future__ import annotations

from typing import Any

from remediate.config import EscalationConfig
from remediate.gh import GitHubError, ensure_labels, explain
from remediate.incident import Incident
from remediate.report import Escalation


def marker(incident_id: str) -> str:
    # Lets a re-run find its issue again without trusting titles people may edit.
    return f"<!-- remediate:incident:{incident_id.replace('--', '-')[:120]} -->"


def escalate_to_issue(repo: Any, incident: Incident | None, body: str, reason: str,
                      config: EscalationConfig) -> Escalation:
    from github import GithubException

    incident_id = incident.id if incident else "unknown"
    tag = marker(incident_id)
    try:
        if config.labels:
            ensure_labels(repo, config.labels, color="b60205")
        for issue in repo.get_issues(state="open"):
            if issue.pull_request is None and tag in (issue.body or ""):
                issue.create_comment(f"remediate ran again and escalated: `{reason}`\n\n{body}")
                return Escalation(("github_issue",), issue.html_url, issue.number)
        title = f"[remediate] Incident {incident_id[:60]} needs a human: {reason}"
        issue = repo.create_issue(title=title, body=f"{tag}\n{body}", labels=list(config.labels))
    except GithubException as exc:
        raise GitHubError(explain(exc, "opening the escalation issue")) from None
    return Escalation(("github_issue",), issue.html_url, issue.number)
