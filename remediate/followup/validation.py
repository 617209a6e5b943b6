"""Staging validation: after a successful deployment to a validated environment, watch the incident's signals
over MCP and say whether the fix worked.

    deployment_status (success, a validated environment) -> the deployed commits since the last validated
    deployment -> their Incident-Id trailers -> each incident's PR and marker -> a pending status -> samples
    every interval_seconds for window_seconds -> per signal and incident: recovered, not_recovered, unknown ->
    the commit status `remediate/validation`, a comment on each PR, and escalation unless recovered.

Bounded: every MCP call is cut at the window's end, the watch ends with it, and what follows (a status, a
comment, the escalation) has its own short timeouts.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from remediate.config import Config, SignalConfig
from remediate.deliver import marker
from remediate.deliver.delivery import hotfix_branch
from remediate.deliver.escalation import run_url
from remediate.deliver.github import GitHub, PullInfo
from remediate.errors import UserError
from remediate.followup.host import Host
from remediate.followup.signals import Sample, Threshold, Unreadable, Verdict, fill, overall, read_json, read_text
from remediate.followup.signals import verdict as signal_verdict
from remediate.followup.triggers import Deployed, deployed, skip
from remediate.gitops import Git
from remediate.incident.payload import Incident
from remediate.inert import inline
from remediate.mcp.client import McpError, McpHub
from remediate.outcome import Outcome, Reason
from remediate.report import validation_table
from remediate.run import Setup

EVENTS = ("deployment_status",)
CONTEXT = "remediate/validation"
CALL_GRACE_SECONDS = 10  # how long past the window's end the last sample's call may take
PUBLISH_MARGIN_SECONDS = 20  # for the status, the comments and the escalation after the watch
CONNECT_SECONDS = 20  # for the metrics servers to connect and list their tools
MAX_COMMITS = 500
MAX_DEPLOYMENTS = 20
_TRAILER = re.compile(r"^Incident-Id:[ \t]*([^\s]{1,200})[ \t]*$", re.M)
STATUS = {Verdict.RECOVERED: "success", Verdict.NOT_RECOVERED: "failure", Verdict.UNKNOWN: "error"}


@dataclass
class Watched:
    """One incident under watch and what its signals did."""
    incident: Incident
    pull: PullInfo  # its hotfix PR: only incidents of our PRs are watched
    state: marker.State  # that PR's marker
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def verdicts(self, signals: Sequence[SignalConfig], consecutive: int) -> dict[str, Verdict]:
        return {s.name: signal_verdict(self.samples.get(s.name, []), consecutive) for s in signals}


def execute(run: Host) -> None:
    request = run.request
    config = run.read_config()
    run.configure(config)
    target = deployed(request.event, config.validation)
    if not config.validation.signals:
        raise UserError("no signals to watch", field="validation.signals",
                        hint="name at least one metric (docs/review-and-validation.md)")
    github = run.github()
    git = run.open_git()
    run.cleanups.append(git.close)
    with run.stage("history"):
        _have(git, target.sha, request.github_token)
        since = last_validated(github, target)
        ids = incident_ids(git, target.sha, since)
    report = {"environment": target.environment, "deployment_id": target.deployment_id, "sha": target.sha,
              "since": since, "verdict": "none", "incidents": [], "window_seconds": config.validation.window_seconds,
              "interval_seconds": config.validation.interval_seconds, "consecutive": config.validation.consecutive,
              "status_published": False}
    run.report.validation = report
    if not ids:
        raise skip(Reason.NO_INCIDENT, f"no Incident-Id trailer in the commits deployed to {target.environment} "
                                       f"since {since[:12] if since else 'the start of the history'}")
    watched = []
    for incident_id in ids:
        found = _watched(github, config, incident_id)
        if found is None:  # a line anyone could write in a commit message: only our PRs' incidents count
            run.runner.log(f"validation: Incident-Id {incident_id} has no remediate pull request; not validated")
        elif since is None and _validated_before(found, target.environment):
            run.runner.log(f"validation: {incident_id} was validated in {target.environment} before; not again")
        else:
            watched.append(found)
    if not watched:
        raise skip(Reason.NO_INCIDENT, f"no incident of a remediate pull request in the commits deployed to "
                                       f"{target.environment} since {since[:12] if since else 'the start'}")
    first = watched[0]
    run.report.incident = first.incident
    setup = Setup(request, config, first.incident, run.redact, run.telemetry, run.runner, git)
    run.setup = setup
    parent = first.state.traceparent or first.incident.traceparent
    run.traced(setup, parent=parent, body=lambda: _validate(run, setup, github, target, watched))


def _have(git: Git, sha: str, token: str | None) -> None:
    """The deployed commit and its history, fetched when the checkout lacks them."""
    if git.run("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode != 0:
        git.run("fetch", "-q", "--no-tags", "--", git.origin, sha, token=git.token_for_origin(token))


def last_validated(github: GitHub, target: Deployed) -> str | None:
    """The newest earlier deployment to the environment whose commit has our status: history since it is new."""
    for deployment_id, sha in github.deployments(target.environment, MAX_DEPLOYMENTS):
        if deployment_id == target.deployment_id or sha == target.sha:
            continue
        if any(state != "pending" for state in github.status_states(sha, CONTEXT)):
            return sha
    return None


def incident_ids(git: Git, sha: str, since: str | None) -> list[str]:
    """Incident-Id trailers (or lines, as a squash merge keeps them) in the commits deployed since `since`,
    oldest first, each once."""
    span = [sha] if since is None else [sha, f"^{since}"]
    if since is not None and git.run("cat-file", "-e", f"{since}^{{commit}}", check=False).returncode != 0:
        span = [sha]  # the earlier deployment's commit is not in this history (a force-push): look at all of it
    raw = git.run("log", f"--max-count={MAX_COMMITS}", "--format=%B%x00", *span, "--").stdout.decode(
        "utf-8", errors="replace")
    found: list[str] = []
    for message in reversed(raw.split("\0")):
        for incident_id in _TRAILER.findall(message):
            if incident_id not in found:
                found.append(incident_id)
    return found


def _watched(github: GitHub, config: Config, incident_id: str) -> Watched | None:
    """The incident as its hotfix PR's marker has it; None when no PR of ours carries it."""
    pull = github.find_pull(hotfix_branch(config.delivery, Incident(incident_id)))
    if pull is None:
        return None
    try:
        state = marker.find(pull.body)
    except marker.MarkerError:
        return None
    if state is None or state.incident.id != incident_id:
        return None
    return Watched(replace(state.incident, trigger="deployment_status"), pull, state)


def _validated_before(watched: Watched, environment: str) -> bool:
    return any(r.kind == "validation" and r.reason == environment for r in watched.state.runs)


def _validate(run: Host, setup: Setup, github: GitHub, target: Deployed, watched: list[Watched]) -> None:
    config = setup.config.validation
    if run.ships:
        try:
            github.set_status(target.sha, "pending", CONTEXT, f"watching {len(config.signals)} signals for "
                              f"{config.window_seconds:g}s", run_url(setup.environ))
        except Exception as exc:
            run.report.warnings.append(run.redact(f"the pending status could not be set: {exc}"))
    with run.stage("watch"):
        watch(run, setup, target, watched)
    verdicts = {w.incident.id: overall(list(w.verdicts(config.signals, config.consecutive).values()))
                for w in watched}
    final = overall(list(verdicts.values()))
    run.report.validation = {**(run.report.validation or {}), "verdict": str(final),
                             "incidents": [_entry(w, setup.config, verdicts[w.incident.id]) for w in watched]}
    detail = "; ".join(f"{w.incident.id}: {verdicts[w.incident.id]}" for w in watched)
    if final == Verdict.RECOVERED:
        ending = (Outcome.FIXED, Reason.RECOVERED, f"{target.environment} recovered after {target.sha[:12]}: {detail}")
    else:
        reason = Reason.NOT_RECOVERED if final == Verdict.NOT_RECOVERED else Reason.VALIDATION_UNKNOWN
        ending = (Outcome.ESCALATED, reason, f"{target.environment} after {target.sha[:12]}: {detail}")
    # The status, the comments and the escalation talk to servers that may hang: the run does not wait past
    # the margin for them (what did not finish is said in the report).
    run.report.outcome, run.report.reason, run.report.detail = ending[0], ending[1], run.redact(ending[2])

    def publish_and_end() -> None:
        _publish(run, setup, github, target, watched, verdicts, final)
        run.end(*ending)

    with run.stage("publish"):
        if not _within(publish_and_end, PUBLISH_MARGIN_SECONDS):
            run.report.warnings.append(f"publishing the verdict and escalating did not finish within "
                                       f"{PUBLISH_MARGIN_SECONDS}s; the run ended without waiting for them")


def _within(work: Callable[[], None], seconds: float) -> bool:
    """Run `work` in a thread; whether it finished within `seconds` (its exceptions are its own to record)."""
    failure: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=guarded, name="publish", daemon=True)
    worker.start()
    worker.join(seconds)
    if failure:
        raise failure[0]
    return not worker.is_alive()


def watch(run: Host, setup: Setup, target: Deployed, watched: list[Watched]) -> None:
    """Sample every signal of every incident each interval until the window ends. A call may take at most
    CALL_GRACE_SECONDS past the window's end (the last sample is due right at it); nothing outlives that."""
    config = setup.config.validation
    started = time.monotonic()
    deadline = started + config.window_seconds
    names = {s.server for s in config.signals}
    servers = [s for s in setup.config.mcp.servers if s.name in names]
    count = int(config.window_seconds // config.interval_seconds) + 1
    try:
        hub_context = run.edges.mcp(servers, setup.environ, setup.telemetry)
        hub = _connected(hub_context)
    except McpError as exc:  # every sample unreadable: the verdict is unknown, never a pass
        for w in watched:
            for signal in config.signals:
                w.samples[signal.name] = [Sample(0.0, None, None, run.redact(str(exc))[:300])]
        return
    try:
        for tick in range(count):
            due = started + tick * config.interval_seconds
            if due > deadline + 1e-6:
                break
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            answers: dict[str, tuple[Any, str | None]] = {}  # one call a tick for the same query
            for w in watched:
                values = {"service": w.incident.service, "incident_id": w.incident.id,
                          "environment": target.environment}
                for signal in config.signals:
                    at = time.monotonic() - started
                    w.samples.setdefault(signal.name, []).append(
                        _sample(run, hub, signal, values, answers, at, deadline, config.interval_seconds))
    finally:
        hub_context.__exit__(None, None, None)


def _connected(hub_context: Any) -> McpHub:
    """The hub entered within CONNECT_SECONDS, whatever the servers do (a server may list tools forever)."""
    entered: list[Any] = []

    def enter() -> None:
        entered.append(hub_context.__enter__())

    if not _within(enter, CONNECT_SECONDS) or not entered:
        raise McpError(f"the metrics servers did not connect and list their tools within {CONNECT_SECONDS}s")
    return entered[0]


def _sample(run: Host, hub: McpHub, signal: SignalConfig, values: dict[str, Any],
            answers: dict[str, tuple[Any, str | None]], at: float, deadline: float, interval: float) -> Sample:
    threshold = Threshold.parse(signal.healthy)
    try:
        arguments = fill(signal.arguments, values)
        key = json.dumps([signal.server, signal.tool, arguments], sort_keys=True, default=str)
        if key not in answers:
            answers[key] = _ask(hub, signal, arguments, deadline, interval)
        result, error = answers[key]
        if error is not None:
            raise Unreadable(error)
        value = read_json(signal.value, result.structured) if signal.value else read_text(signal.regex or "",
                                                                                             result.text)
    except Unreadable as exc:
        return Sample(at, None, None, run.redact(str(exc))[:300])
    except Exception as exc:  # a hostile answer (nesting past what JSONPath walks): unreadable, not a crash
        return Sample(at, None, None, f"the answer could not be read: {type(exc).__name__}")
    return Sample(at, value, threshold.holds(value))


def _ask(hub: McpHub, signal: SignalConfig, arguments: Any, deadline: float,
         interval: float) -> tuple[Any, str | None]:
    """One call, cut at one interval (at least a second: a call longer than that makes the next sample late
    anyway) and never past the window's end and its grace."""
    tool = hub.find(signal.server, signal.tool)
    if tool is None:
        return None, f"server {signal.server} has no tool {signal.tool}"
    left = min(max(interval, 1.0), deadline + CALL_GRACE_SECONDS - time.monotonic())
    if left <= 0:
        return None, "the window ended before the call"
    try:
        result = hub.call(tool, arguments if isinstance(arguments, dict) else {}, by="validation", within=left)
    except McpError as exc:
        return None, str(exc)
    if result.is_error:
        return None, f"the tool answered with an error: {result.text[:200]}"
    return result, None


def _entry(w: Watched, config: Config, final: Verdict) -> dict[str, Any]:
    verdicts = w.verdicts(config.validation.signals, config.validation.consecutive)
    signals = []
    for signal in config.validation.signals:
        samples = w.samples.get(signal.name, [])
        read = [s.value for s in samples if s.value is not None]
        at_incident = dict(w.incident.metrics).get(signal.name, read[0] if read else None)
        signals.append({"name": signal.name, "threshold": str(Threshold.parse(signal.healthy)),
                        "at_incident": at_incident, "last": samples[-1].value if samples else None,
                        "verdict": str(verdicts[signal.name]), "samples": [s.to_dict() for s in samples]})
    return {"incident_id": w.incident.id, "pr": {"number": w.pull.number, "url": w.pull.url},
            "verdict": str(final), "signals": signals}


def _publish(run: Host, setup: Setup, github: GitHub, target: Deployed, watched: list[Watched],
             verdicts: dict[str, Verdict], final: Verdict) -> None:
    if not run.ships:
        return
    report = run.report.validation or {}
    try:
        github.set_status(target.sha, STATUS[final], CONTEXT, f"{final}: " + ", ".join(
            f"{i} {v}" for i, v in verdicts.items()), run_url(setup.environ))
        report["status_published"] = True
    except Exception as exc:
        run.report.warnings.append(run.redact(f"the commit status could not be set: {exc}"))
    for w, entry in zip(watched, report.get("incidents", []), strict=True):
        body = (f"### remediate staging validation: `{entry['verdict']}`\n\n"
                f"Deployment of `{target.sha[:12]}` to {inline(target.environment)}, watched for "
                f"{setup.config.validation.window_seconds:g}s; a signal is healthy when its last "
                f"{setup.config.validation.consecutive} samples are.\n\n{validation_table(entry)}\n\n"
                f"- Trace ID: `{run.report.trace_id}`")
        try:
            github.comment(w.pull.number, run.redact(body))
            # The verdict joins the incident's runs in the PR's description.
            marker.record(github, w.pull.number, marker.RunEntry(
                "validation", run.report.trace_id, str(entry["verdict"]), target.environment, 0.0,
                datetime.now(UTC).isoformat(timespec="seconds"), note=f"deployment of {target.sha[:12]}"),
                w.state, run.redact)
        except Exception as exc:
            run.report.warnings.append(run.redact(f"the comment on pull request #{w.pull.number} failed: {exc}"))
