"""One run = one incident. This module holds the stage order and nothing else:

    config -> incident -> (setup) -> preflight -> test_setup -> mcp -> context -> agent -> tests
           -> deliver (fixed) | escalate (escalated, error) -> report

Each stage lives in its package (docs/architecture.md has the map) and takes its inputs and returns
its values; this module records them in the report. Everything that ends a run early is a `Stop`,
caught once here. The edges (model, MCP hub, GitHub) come from `Edges`, so tests can run the whole
pipeline in-process.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import trace

from remediate.actions import Runner, report_location
from remediate.agent.budget import BudgetMeter, price_for
from remediate.agent.llm import ChatModel, OpenAIChat
from remediate.agent.loop import Agent
from remediate.agent.tools import Toolbox
from remediate.config import Config, EscalationConfig, LLMConfig, MCPServerConfig, TelemetryConfig, load_config
from remediate.context.pack import scope_note
from remediate.context.prefetch import gather, summary
from remediate.deliver.delivery import DeliveryError, base_branch, commit_change, open_or_update_pr, push
from remediate.deliver.escalation import notify, push_attempt
from remediate.deliver.github import GitHub, PyGitHub
from remediate.errors import UserError
from remediate.gitops import Git
from remediate.guard.changes import ChangeSet
from remediate.guard.guardrails import policy_for
from remediate.guard.workspace import Workspace
from remediate.incident import payload as incident_payload
from remediate.mcp.client import McpHub
from remediate.outcome import Outcome, Reason, Stop
from remediate.records import PullRequest
from remediate.report import Report, render_changes, render_pr_body, render_summary
from remediate.run import RunRequest, Setup
from remediate.secrets import Redactor, scrubbed_env
from remediate.telemetry import Telemetry, parent_context, set_error, trace_id_of
from remediate.telemetry import setup as telemetry_setup
from remediate.verify.runner import TestRunner, install

__all__ = ["Edges", "Run", "RunRequest", "finish"]


def _open_hub(servers: Sequence[MCPServerConfig], environ: Mapping[str, str], telemetry: Telemetry) -> McpHub:
    return McpHub(list(servers), environ, telemetry=telemetry)


@dataclass(frozen=True)
class Edges:
    """The outside world a run talks to; tests pass their own."""

    chat: Callable[[LLMConfig, str, str | None], ChatModel] = OpenAIChat
    mcp: Callable[[Sequence[MCPServerConfig], Mapping[str, str], Telemetry], McpHub] = _open_hub
    github: Callable[[str, str, str], GitHub] = PyGitHub.connect


@dataclass
class Run:
    request: RunRequest
    runner: Runner
    edges: Edges = field(default_factory=Edges)
    report: Report = field(default_factory=Report)
    redact: Redactor = field(default_factory=Redactor)
    telemetry: Telemetry = field(default_factory=lambda: telemetry_setup(TelemetryConfig()))
    setup: Setup | None = None  # once config and incident are read

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            with self.runner.group(name), self.telemetry.span(f"stage {name}"):
                yield
        finally:
            # Recorded for a stage that fails too: that is the timing a post-mortem looks for.
            self.report.timings[name] = self.report.timings.get(name, 0.0) + time.monotonic() - started

    def execute(self) -> Report:
        self.report.dry_run = self.request.dry_run
        self._secret(self.request.github_token)
        try:
            self.setup = self._setup()
            self._traced(self.setup)
        except Stop as stop:
            self._end(stop.outcome, stop.reason, stop.detail)
        except Exception as exc:
            self._end(Outcome.ERROR, Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            self.report.warnings.append(self.redact("".join(traceback.format_exception(exc))[-3000:]))
        return self.report

    def _setup(self) -> Setup:
        request = self.request
        # Parsed once, before the incident (which needs trigger.event_type); a config error is raised after the
        # incident is read, so a missing incident id is still the error people see first.
        config: Config | None = None
        config_error: UserError | None = None
        with self.stage("config"):
            try:
                config = load_config(request.repo, request.inputs.get("config"), request.inputs)
            except UserError as exc:
                config_error = exc
        with self.stage("incident"):
            event_type = config.trigger.event_type if config else "incident"
            incident = incident_payload.from_event(request.event_name, request.event, request.inputs,
                                                   event_type=event_type)
            self.report.incident = incident
        if config_error or config is None:
            raise config_error or UserError("no configuration", field="config")
        self.report.config_source = config.source
        names, values = config.secret_sources()
        for value in [request.environ.get(name) for name in names] + values:
            self._secret(value)
        self.telemetry = telemetry_setup(config.telemetry)
        return Setup(request, config, incident, self.redact, self.telemetry, self.runner,
                     Git(request.repo.resolve(), scrubbed_env(request.environ)))

    def _secret(self, value: str | None) -> None:
        self.redact.add(value)
        self.runner.mask(value)

    def _traced(self, setup: Setup) -> None:
        report = self.report
        with setup.telemetry.tracer.start_as_current_span(
                "invoke_agent remediate", context=parent_context(setup.incident.traceparent),
                kind=trace.SpanKind.INTERNAL,
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "remediate",
                            "remediate.incident.id": setup.incident.id,
                            "remediate.trigger": setup.incident.trigger}) as root:
            report.trace_id = trace_id_of(root)
            template = setup.config.telemetry.trace_url_template
            if template:
                report.trace_url = template.replace("{trace_id}", report.trace_id)
            try:
                self._remediate(setup)
            except Stop as stop:
                self._end(stop.outcome, stop.reason, stop.detail)
            root.set_attribute("remediate.outcome", str(report.outcome))
            root.set_attribute("remediate.cost_usd", report.cost_usd)
            root.set_attribute("gen_ai.usage.input_tokens", sum(c["input_tokens"] for c in report.llm_calls))
            root.set_attribute("gen_ai.usage.output_tokens", sum(c["output_tokens"] for c in report.llm_calls))
            root.set_attribute("remediate.reason", str(report.reason))
            if report.outcome == Outcome.ERROR:
                set_error(root, str(report.reason))

    def _remediate(self, setup: Setup) -> None:
        config, report = setup.config, self.report
        _preflight(setup)
        if config.tests.setup:
            with self.stage("test_setup"):
                install(setup)
        price = price_for(config.llm.model, config.costs.prices)
        if price is None:
            raise UserError(f"no price is known for model {config.llm.model!r}", field="costs.prices",
                            hint=f"add costs.prices.{config.llm.api_model}: {{input: , cached_input: , output: }} "
                                 "in USD per million tokens")
        report.model, report.budget_usd = config.llm.api_model, config.costs.budget_usd
        with ExitStack() as stack:
            with self.stage("mcp"):
                hub = stack.enter_context(self.edges.mcp(config.mcp.servers, setup.environ, setup.telemetry))
            with self.stage("context"):
                pack = gather(setup, hub, report.warnings)
                report.context = summary(pack)
            policy, warning = policy_for(config.guardrails, config.tests, pack.implicated_files,
                                         frozenset(setup.redact.values))
            report.warnings += [warning] if warning else []
            workspace = Workspace(setup.repo, policy)
            tests = TestRunner(setup, workspace, report.warnings)
            toolbox = Toolbox(workspace, setup.redact, tests.run, setup.git, hub, config.guardrails.allowed_commands,
                              config.guardrails.blocked_commands, scrubbed_env(setup.environ, config.tests.env),
                              config.guardrails.max_refusals, telemetry=setup.telemetry)
            api_key = setup.environ.get(config.llm.api_key_env) or ""
            model = self.edges.chat(config.llm, api_key, config.llm.base_url or setup.environ.get("OPENAI_BASE_URL"))
            agent = Agent(model, toolbox, BudgetMeter(price, config.costs.budget_usd), setup.telemetry, "openai",
                          config.agent.max_llm_calls, config.agent.max_wall_seconds, config.llm.max_tokens,
                          retries=config.llm.max_retries)
            root = trace.get_current_span()
            root.set_attribute("gen_ai.provider.name", "openai")
            root.set_attribute("gen_ai.request.model", config.llm.api_model)
            prompt = pack.render() + "\n" + scope_note(policy.scope_files, policy.protected,
                                                      policy.max_files_modified, policy.max_lines_changed).render()
            with self.stage("agent"):
                try:
                    result = agent.run(prompt)
                finally:
                    report.llm_calls, report.guardrail_events = agent.per_call, toolbox.events
                    report.changes, report.mcp_calls = workspace.changes, list(hub.records)
        report.agent_summary = result.detail if result.finished else None
        if result.reason is not None:
            raise Stop(result.reason, result.detail)
        if not len(workspace.changes):
            raise Stop(Reason.NO_CHANGE, "the model finished without changing any file")
        with self.stage("tests"):
            verified = tests.verify()
            report.tests, report.regression = verified.run, verified.proof
        run = verified.run
        if not run.ok:
            if verified.blamed or run.status != "failed":
                stopped = f" (stopped after {run.stopped_after} failures)" if run.stopped_after else ""
                raise Stop(Reason.TESTS_FAILED, f"affected tests {run.summary()}{stopped}")
            report.warnings.append("tests failing before the fix too, not blamed on it: "
                                   + ", ".join(verified.proof.pre_existing_failures[:10]))
        with self.stage("deliver"):
            report.pr = None if setup.dry_run else self._deliver(setup, workspace.changes)
        # Honest about what passed: failures that predate the fix are named, not hidden behind "passed".
        reason = Reason.TESTS_PASSED if run.ok else Reason.TESTS_PASS_EXCEPT_PRE_EXISTING
        self._end(Outcome.FIXED, reason, "dry run: the change was not pushed" if setup.dry_run
                  else f"pull request {report.pr.url if report.pr else ''}".strip())

    def _deliver(self, setup: Setup, changes: ChangeSet) -> PullRequest:
        config, token, span = setup.config.delivery, self.request.github_token, setup.telemetry.span
        with span("github get_repo"):
            github = self._github()
        try:
            base = base_branch(setup.git, config, github)
            with span("git commit"):
                commit = commit_change(setup.git, changes, setup.incident, config, base, self.report.trace_id,
                                       self.report.agent_summary)
            with span("git push", {"remediate.branch": commit.branch}):
                push(setup.git, commit, token, setup.incident, config.bot_email)
        except DeliveryError as exc:
            raise Stop(exc.reason, f"{exc.detail}. The fix and its passing tests are in the report.") from None
        with span("github pull_request"):
            return open_or_update_pr(github, commit, setup.incident, self.redact(render_pr_body(self.report)),
                                     config, self.redact(render_changes(self.report)))

    def _github(self) -> GitHub:
        env = self.request.environ
        return self.edges.github(self.request.github_token or "", env.get("GITHUB_API_URL") or "https://api.github.com",
                                 env.get("GITHUB_REPOSITORY", ""))

    def _end(self, outcome: Outcome, reason: Reason, detail: str) -> None:
        self.report.outcome, self.report.reason, self.report.detail = outcome, reason, self.redact(detail)
        if outcome != Outcome.FIXED and not self.request.dry_run:
            self._escalate()

    def _escalate(self) -> None:
        report, setup, env = self.report, self.setup, self.request.environ
        config = setup.config.escalation if setup else EscalationConfig()
        attempt: tuple[str | None, str | None] = (None, None)
        if config.push_attempt and setup:
            attempt = push_attempt(setup.git, report, self.request.github_token, setup.config.delivery,
                                   self.telemetry, self.redact)
        report.attempt_branch = attempt[0]
        can_open_issue = bool(self.request.github_token and env.get("GITHUB_REPOSITORY"))
        report.escalation = notify(report, config, env, self._github if can_open_issue else None, self.telemetry,
                                   self.redact, report.warnings, attempt)


def _preflight(setup: Setup) -> None:
    """Fail before spending money on what would fail at the end anyway."""
    config, env = setup.config, setup.environ
    if not env.get(config.llm.api_key_env):
        raise UserError(f"environment variable {config.llm.api_key_env} is not set",
                        field="llm.api_key_env", hint="pass the LLM key as a secret in the step's env")
    if not (setup.repo / ".git").exists():
        raise UserError(f"{setup.repo} is not a git checkout", field="GITHUB_WORKSPACE",
                        hint="run actions/checkout before this action")
    if not setup.dry_run and not (setup.request.github_token and env.get("GITHUB_REPOSITORY")):
        raise UserError("a GitHub token and GITHUB_REPOSITORY are needed to open a pull request",
                        field="github-token", hint="set them, or use dry-run")


def finish(run: Run, report_path: Path | None) -> int:
    """Write the report, the outputs and the summary; flush telemetry. Runs for every outcome."""
    report, runner = run.report, run.runner
    report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    slug = report.incident.branch_slug if report.incident else "unknown"
    path, shown_path = (report_path, str(report_path)) if report_path else report_location(run.request.environ, slug)
    try:
        report.write(path, run.redact)
    except OSError as exc:
        runner.error(f"could not write the report to {path}: {exc}")
    outputs = {"outcome": str(report.outcome), "reason": str(report.reason),
               "pr-url": report.pr.url if report.pr else "", "pr-number": str(report.pr.number) if report.pr else "",
               "branch": report.pr.branch if report.pr else "", "trace-id": report.trace_id,
               "cost-usd": f"{report.cost_usd:.6f}", "llm-calls": str(len(report.llm_calls)),
               "report-path": shown_path,
               "escalation-url": report.escalation.issue_url or "" if report.escalation else "",
               "attempt-branch": report.attempt_branch or ""}
    runner.set_outputs(outputs)
    runner.write_summary(run.redact(render_summary(report, shown_path)))
    if report.outcome == Outcome.ERROR:
        runner.error(report.detail or str(report.reason))
    elif report.outcome == Outcome.ESCALATED:
        runner.warning(f"escalated: {report.reason}: {report.detail}")
    for warning in report.warnings[:5]:
        if not warning.startswith("Traceback"):
            runner.warning(warning.splitlines()[0][:300])
    runner.log(json.dumps({"outcome": report.outcome, "reason": report.reason, "pr": outputs["pr-url"] or None,
                           "escalation": outputs["escalation-url"] or None, "trace_id": report.trace_id,
                           "cost_usd": report.cost_usd, "report": shown_path}))
    run.telemetry.shutdown()
    return report.exit_code
