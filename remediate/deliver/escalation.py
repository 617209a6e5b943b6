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

from remediate.config import Config, DeliveryConfig, EscalationConfig
from remediate.deliver.delivery import attempt_branch, commit_change, push
from remediate.deliver.github import GitHub
from remediate.gitops import Git
from remediate.incident.payload import Incident
from remediate.inert import inert_plain
from remediate.records import Escalation
from remediate.report import Report, render_escalation
from remediate.secrets import Redactor
from remediate.telemetry import Telemetry


class ChannelError(Exception):
    pass


def marker(incident_id: str) -> str:
    # Lets a re-run find its issue again without trusting titles people may edit.
    return f"<!-- remediate:incident:{incident_id.replace('--', '-')[:120]} -->"


def escalate_to_issue(github: GitHub, incident: Incident | None, body: str, reason: str,
                      config: EscalationConfig) -> tuple[str, int]:
    """One open issue per incident: opened once, commented on by re-runs. Returns (url, number)."""
    incident_id = incident.id if incident else "unknown"
    tag = marker(incident_id)
    if config.labels:
        github.ensure_labels(config.labels, "b60205")
    for issue in github.open_issues():
        if tag in issue.body:
            github.comment(issue.number, f"remediate ran again and escalated: `{reason}`\n\n{body}")
            return issue.url, issue.number
    title = inert_plain(f"[remediate] Incident {incident_id[:60]} needs a human: {reason}")
    issue = github.create_issue(title, f"{tag}\n{body}", config.labels)
    return issue.url, issue.number


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
                               "tests": report.tests.summary() if report.tests else None,
                               **({"validation": _validation_details(report)} if report.validation else {})},
        },
        "links": links,
        "client": "remediate",
        **({"client_url": ctx.run_url} if ctx.run_url else {}),
    }


def _validation_details(report: Report) -> dict[str, Any]:
    """What staging showed, compact: per incident, its PR and each signal's last value and verdict."""
    validation = report.validation or {}
    return {"environment": validation.get("environment"), "sha": validation.get("sha"),
            "verdict": validation.get("verdict"),
            "incidents": [{"incident_id": e["incident_id"], "pr_url": (e.get("pr") or {}).get("url"),
                           "signals": {s["name"]: {"at_incident": s["at_incident"], "last": s["last"],
                                                   "threshold": s["threshold"], "verdict": s["verdict"]}
                                       for s in e["signals"]}}
                          for e in validation.get("incidents", [])]}


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


def push_attempt(git: Git, report: Report, token: str | None, delivery: DeliveryConfig, telemetry: Telemetry,
                 redact: Callable[[str], str]) -> tuple[str | None, str | None]:
    """The attempted change on hotfix-attempt/<id>, without a PR, for on-call to start from.
    Returns (branch, None) when pushed, (None, warning) when that failed, (None, None) when nothing to push."""
    if report.incident is None or not len(report.changes):
        return None, None
    branch = attempt_branch(report.incident)
    try:
        with telemetry.span("git push attempt"):
            commit = commit_change(git, report.changes, report.incident, delivery, git.branch or "HEAD",
                                   report.trace_id, report.agent_summary, branch=branch)
            push(git, commit, token, report.incident, delivery.bot_email)
    except Exception as exc:
        return None, redact(f"escalation channel attempt_branch failed: {exc}")
    return branch, None


def notify(report: Report, config: EscalationConfig, environ: Mapping[str, str], github: Callable[[], GitHub] | None,
           telemetry: Telemetry, redact: Redactor, warnings: list[str],
           attempt: tuple[str | None, str | None] = (None, None)) -> Escalation:
    """Every configured channel, each on its own: one failing never hides the others. `github` is None when
    there is no token or repository to open an issue with; `attempt` is what push_attempt did."""
    delivered: list[str] = []
    failed: list[str] = []
    if config.push_attempt and (attempt[0] or attempt[1]):
        (delivered if attempt[0] else failed).append("attempt_branch")
        if attempt[1]:
            warnings.append(attempt[1])
    markdown = redact(render_escalation(report))
    issue_url = issue_number = None
    if config.github_issue and github is not None:
        try:
            with telemetry.span("github escalation_issue"):
                issue_url, issue_number = escalate_to_issue(github(), report.incident, markdown, report.reason,
                                                            config)
            delivered.append("github_issue")
        except Exception as exc:
            failed.append("github_issue")
            warnings.append(redact(f"escalation channel github_issue failed: {exc}"))
    ctx = EscalationContext(report, markdown, run_url(environ), issue_url, redact)
    report_dict = redact.deep(report.to_dict())
    for name, send in http_channels(config, ctx, environ, report_dict):
        try:
            with telemetry.span(f"escalate {name}"):
                send()
            delivered.append(name)
        except Exception as exc:
            failed.append(name)
            warnings.append(redact(f"escalation channel {name} failed: {exc}"))
    return Escalation(tuple(delivered), issue_url, issue_number, tuple(failed), attempt[0])


def escalate(report: Report, config: Config | None, git: Git | None, environ: Mapping[str, str], token: str | None,
             github: Callable[[], GitHub] | None, telemetry: Telemetry, redact: Redactor) -> Escalation:
    """The attempt branch (when configured, and the run got as far as a checkout), then every channel. Without a
    config (a config error) the defaults apply: the GitHub issue."""
    channels = config.escalation if config else EscalationConfig()
    attempt: tuple[str | None, str | None] = (None, None)
    if channels.push_attempt and config and git:
        attempt = push_attempt(git, report, token, config.delivery, telemetry, redact)
    report.attempt_branch = attempt[0]
    return notify(report, channels, environ, github, telemetry, redact, report.warnings, attempt)


def run_url(environ: Mapping[str, str]) -> str | None:
    parts = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None
