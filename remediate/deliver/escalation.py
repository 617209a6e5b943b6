"""Escalation to humans: a GitHub issue per incident, PagerDuty Events v2, a JSON webhook, Slack.

Each channel is independent: one failing never hides the others, and the report lists what was
delivered where."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from remediate.config import EscalationConfig
from remediate.deliver.github import GitHubError, ensure_labels, explain
from remediate.incident.payload import Incident
from remediate.report import Report


class ChannelError(Exception):
    pass


def marker(incident_id: str) -> str:
    # Lets a re-run find its issue again without trusting titles people may edit.
    return f"<!-- remediate:incident:{incident_id.replace('--', '-')[:120]} -->"


def escalate_to_issue(repo: Any, incident: Incident | None, body: str, reason: str,
                      config: EscalationConfig) -> tuple[str, int]:
    """One open issue per incident: opened once, commented on by re-runs. Returns (url, number)."""
    from github import GithubException

    incident_id = incident.id if incident else "unknown"
    tag = marker(incident_id)
    try:
        if config.labels:
            ensure_labels(repo, config.labels, color="b60205")
        for issue in repo.get_issues(state="open"):
            if issue.pull_request is None and tag in (issue.body or ""):
                issue.create_comment(f"remediate ran again and escalated: `{reason}`\n\n{body}")
                return issue.html_url, issue.number
        title = f"[remediate] Incident {incident_id[:60]} needs a human: {reason}"
        issue = repo.create_issue(title=title, body=f"{tag}\n{body}", labels=list(config.labels))
    except GithubException as exc:
        raise GitHubError(explain(exc, "opening the escalation issue")) from None
    return issue.html_url, issue.number


def post_json(url: str, payload: Mapping[str, Any], headers: Mapping[str, str], timeout: float) -> int:
    """POST with one retry on a 5xx, 429 or a connection failure; returns the status."""
    data = json.dumps(payload).encode()
    last = ""
    for attempt in range(2):
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "remediate",
                                                  **headers})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt == 0:
            time.sleep(1)
    raise ChannelError(last or "no answer")


@dataclass(frozen=True)
class EscalationContext:
    report: Report
    markdown: str
    run_url: str | None
    issue_url: str | None
    redact: Callable[[str], str]


def pagerduty_event(ctx: EscalationContext, routing_key: str, severity: str) -> dict[str, Any]:
    report, incident = ctx.report, ctx.report.incident
    incident_id = incident.id if incident else "unknown"
    summary = f"remediate could not fix {incident_id} ({report.reason}): {incident.summary if incident else ''}"
    links = [{"href": url, "text": text} for url, text in ((ctx.issue_url, "Escalation issue"),
                                                          (ctx.run_url, "Workflow run and report")) if url]
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": incident_id,
        "payload": {
            "summary": ctx.redact(summary)[:1024],
            "source": "remediate",
            "severity": severity,
            "component": incident.service if incident and incident.service else None,
            "custom_details": {"reason": report.reason, "detail": ctx.redact(report.detail)[:2000],
                               "trace_id": report.trace_id, "cost_usd": report.cost_usd,
                               "changes": [c.path for c in report.changes],
                               "tests": report.tests.summary() if report.tests else None},
        },
        "links": links,
        "client": "remediate",
        **({"client_url": ctx.run_url} if ctx.run_url else {}),
    }


def slack_message(ctx: EscalationContext) -> dict[str, Any]:
    report, incident = ctx.report, ctx.report.incident
    incident_id = incident.id if incident else "unknown"
    lines = [f":rotating_light: *remediate could not fix `{incident_id}`*: `{report.reason}`",
             ctx.redact(report.detail)[:500]]
    if incident and incident.summary:
        lines.append(f"> {ctx.redact(incident.summary)[:300]}")
    for url, text in ((ctx.issue_url, "Escalation issue"), (ctx.run_url, "Workflow run and report")):
        if url:
            lines.append(f"<{url}|{text}>")
    lines.append(f"Trace `{report.trace_id}` · ${report.cost_usd:.4f}")
    return {"text": "\n".join(line for line in lines if line)}


def webhook_payload(ctx: EscalationContext, report_dict: Mapping[str, Any]) -> dict[str, Any]:
    return {"event": "remediate.escalation", "issue_url": ctx.issue_url, "run_url": ctx.run_url,
            "summary_markdown": ctx.markdown, "report": report_dict}


def http_channels(config: EscalationConfig, ctx: EscalationContext, environ: Mapping[str, str],
                  report_dict: Mapping[str, Any]) -> list[tuple[str, Callable[[], int]]]:
    """The configured HTTP channels as (name, send) pairs; each send raises on its own failure, including a
    missing variable, so one broken channel never stops the others."""
    timeout = config.timeout_seconds

    def needs(name: str) -> str:
        value = environ.get(name)
        if not value:
            raise ChannelError(f"environment variable {name} is not set")
        return value

    channels: list[tuple[str, Callable[[], int]]] = []
    if config.pagerduty:
        pd = config.pagerduty
        channels.append(("pagerduty", lambda: post_json(
            pd.url, pagerduty_event(ctx, needs(pd.routing_key_env), pd.severity), {}, timeout)))
    if config.webhook:
        hook = config.webhook
        channels.append(("webhook", lambda: post_json(
            needs(hook.url_env), webhook_payload(ctx, report_dict), hook.headers, timeout)))
    if config.slack:
        slack = config.slack
        channels.append(("slack", lambda: post_json(needs(slack.webhook_url_env), slack_message(ctx), {}, timeout)))
    return channels
