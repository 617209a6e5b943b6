"""One run = one incident. This module holds the stage order and nothing else:

    config -> incident -> (setup) -> preflight -> test_setup -> mcp -> context -> agent -> tests
           -> deliver (fixed) | escalate (escalated, error) -> report

Each stage lives in its package (docs/architecture.md has the map) and takes its inputs and returns
its values; this module records them in the report. Everything that ends a run early is a `Stop`,
caught once here. The edges (model, MCP hub, GitHub) come from `Edges`, so tests can run the whole
pipeline in-process.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import trace

from remediate.actions import Runner
from remediate.agent.budget import price_of
from remediate.agent.llm import ChatModel, OpenAIChat
from remediate.agent.loop import SYSTEM_PROMPT, Agent
from remediate.agent.tools import Toolbox, tool_schemas
from remediate.checks.hooks import Hooks
from remediate.config import Config, LLMConfig, MCPServerConfig, TelemetryConfig, load_config
from remediate.context.pack import first_prompt_tokens, scope_note
from remediate.context.prefetch import gather, summary
from remediate.deliver import marker, proposal
from remediate.deliver.delivery import deliver
from remediate.deliver.escalation import escalate
from remediate.deliver.github import GitHub, PyGitHub
from remediate.errors import UserError
from remediate.followup import review as followup_review
from remediate.followup import validation as followup_validation
from remediate.followup.review import FollowUp
from remediate.gitops import Git, workspace_drift
from remediate.guard.changes import ChangeSet
from remediate.guard.guardrails import policy_for
from remediate.guard.sandbox import Sandbox, for_setup
from remediate.guard.workspace import Workspace
from remediate.incident import payload as incident_payload
from remediate.mcp.client import McpHub, withheld_tools
from remediate.outcome import Outcome, Reason, Stop, stop
from remediate.outputs import publish
from remediate.records import PullRequest
from remediate.report import Report, render_changes, render_pr_body
from remediate.run import RunRequest, Setup
from remediate.secrets import Redactor, scrubbed_env
from remediate.telemetry import Telemetry, new_trace_id, parent_context, set_error, trace_id_of, traceparent_of
from remediate.telemetry import setup as telemetry_setup
from remediate.verify.runner import TestRunner, install

__all__ = ["Edges", "Run", "RunRequest", "finish"]
SCOPE_NOTE_TOKENS = 150  # room kept for the scope note, written once the pack says what is in scope


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
    trace_id: str = field(default_factory=new_trace_id)  # the run's, from its first moment: every output has it
    setup: Setup | None = None  # once config and incident are read
    followup: FollowUp | None = None  # a review run's additions to the prompt, budget and delivery
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run when the run is over
    escalating: bool = True  # False while a review run does not yet know its author may start one
    _hub: McpHub | None = None  # connecting from the start of the remediate stages
    traceparent: str | None = None  # the run's root span, for a second job to continue the trace
    proposal_path: Path | None = None

    @property
    def mode(self) -> str:
        return self.request.command

    @property
    def ships(self) -> bool:
        """Whether this run pushes and talks to GitHub: not a dry run, not the read-only first job."""
        return not self.request.dry_run and self.mode != "propose"

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
        self.report.dry_run, self.report.mode = self.request.dry_run, self.mode
        self.report.trace_id = self.trace_id
        self._secret(self.request.github_token)
        try:
            if self.request.event_name in followup_review.EVENTS:
                self.report.mode = "review"
                followup_review.execute(self)
            elif self.request.event_name in followup_validation.EVENTS:
                self.report.mode = "validate"
                followup_validation.execute(self)
            else:
                self.setup = self._setup()
                self.traced(self.setup)
        except Stop as stop:
            self.end(stop.outcome, stop.reason, stop.detail)
        except Exception as exc:
            self.end(Outcome.ERROR, Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            self.report.warnings.append(self.redact("".join(traceback.format_exception(exc))[-3000:]))
        finally:
            if self.setup and self.mode == "propose":
                self.proposal_path = self._write_proposal(self.setup)
            if self.setup:
                self.setup.git.close()  # after escalation, which may push the attempt from it
            for cleanup in reversed(self.cleanups):
                cleanup()
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
        self.configure(config)
        return Setup(request, config, incident, self.redact, self.telemetry, self.runner, self.open_git())

    def read_config(self) -> Config:
        """The checkout's config (a follow-up run reads it before it knows the incident)."""
        with self.stage("config"):
            return load_config(self.request.repo, self.request.inputs.get("config"), self.request.inputs)

    def configure(self, config: Config) -> None:
        """What a config means for the run before any stage: its notices, its secrets, its telemetry."""
        self.report.config_source = config.source
        self.report.ignored_config = list(config.ignored)
        for key, why in config.ignored:
            self.runner.log(f"config: {key} is loaded but ignored: {why}")
        if config.source is None:
            self.report.warnings.append(
                "no configuration file found (.remediate.yaml, .remediate.yml, .architect.yaml, .architect.yml): "
                "defaults are used, with no MCP server, so the model sees no logs or incident data; add one "
                "(docs/configuration.md)")
        self.configure_secrets(config)
        self.telemetry = telemetry_setup(config.telemetry, trace_id=self.trace_id)

    def configure_secrets(self, config: Config) -> None:
        names, values = config.secret_sources()
        for value in [self.request.environ.get(name) for name in names] + values:
            self._secret(value)

    def open_git(self) -> Git:
        request = self.request
        if not (request.repo / ".git").exists():
            raise UserError(f"{request.repo} is not a git checkout", field="GITHUB_WORKSPACE",
                            hint="run actions/checkout before this action")
        return Git.open(request.repo, scrubbed_env(request.environ), request.environ.get("GITHUB_SERVER_URL"))

    def _secret(self, value: str | None) -> None:
        self.redact.add(value)
        self.runner.mask(value)

    def traced(self, setup: Setup, parent: str | None = None, body: Callable[[], None] | None = None) -> None:
        """The run's root span around `body` (by default: remediate, or deliver a proposal), as a child of
        `parent`, else of the proposal's or the incident's traceparent."""
        report = self.report
        handed = self._read_proposal(setup) if self.mode == "deliver" and body is None else None
        with setup.telemetry.tracer.start_as_current_span(
                "invoke_agent remediate", context=parent_context(parent or (handed and handed.traceparent)
                                                                 or setup.incident.traceparent),
                kind=trace.SpanKind.INTERNAL,
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "remediate",
                            "remediate.incident.id": setup.incident.id,
                            "remediate.trigger": setup.incident.trigger}) as root:
            report.trace_id, self.traceparent = trace_id_of(root), traceparent_of(root)
            template = setup.config.telemetry.trace_url_template
            if template:
                report.trace_url = template.replace("{trace_id}", report.trace_id)
            try:
                if body is not None:
                    body()
                elif handed is not None:
                    self._deliver_proposal(setup, handed)
                else:
                    self._remediate(setup)
            except Stop as stop:
                self.end(stop.outcome, stop.reason, stop.detail)
            root.set_attribute("remediate.outcome", str(report.outcome))
            root.set_attribute("remediate.cost_usd", report.cost_usd)
            root.set_attribute("gen_ai.usage.input_tokens", sum(c["input_tokens"] for c in report.llm_calls))
            root.set_attribute("gen_ai.usage.output_tokens", sum(c["output_tokens"] for c in report.llm_calls))
            root.set_attribute("remediate.reason", str(report.reason))
            if report.outcome == Outcome.ERROR:
                set_error(root, str(report.reason))

    def _remediate(self, setup: Setup) -> None:
        setup.preflight()
        # Connecting to the MCP servers overlaps the sandbox's set-up and tests.setup; the mcp stage waits for it.
        self._hub = hub = self.edges.mcp(setup.config.mcp.servers, setup.environ, setup.telemetry).start()
        try:
            self._remediate_sandboxed(setup)
        finally:
            if self._hub is hub:  # the run ended before the mcp stage took it: close the connection it started
                hub.__exit__(None, None, None)

    def _remediate_sandboxed(self, setup: Setup) -> None:
        with for_setup(setup) as (sandbox, warnings):
            self.report.warnings += warnings
            self.report.sandbox = sandbox.isolation()
            for missing in self.report.sandbox["missing"]:
                self.runner.warning(f"sandbox: {missing}")
            hooks = Hooks.for_setup(setup, sandbox)
            self.report.checks = hooks.records  # gates record there too: one list, in the order things ran
            try:
                self._remediate_in(setup, sandbox, hooks)
            except Stop as stop:
                hooks.session_end(self._ending(str(stop.outcome), str(stop.reason), stop.detail))
                raise
            except Exception as exc:
                hooks.session_end(self._ending(str(Outcome.ERROR), str(Reason.INTERNAL_ERROR), type(exc).__name__))
                raise
            else:
                hooks.session_end(self._ending(str(self.report.outcome), str(self.report.reason), self.report.detail))

    def _first_prompt(self, config: Config, toolbox: Toolbox, prompt: str) -> dict[str, int]:
        """The first prompt's estimated tokens, by part, against agent.first_prompt_tokens."""
        parts = {"system": first_prompt_tokens(SYSTEM_PROMPT), "tools": first_prompt_tokens("", toolbox.schemas()),
                 "context": first_prompt_tokens(prompt)}
        total, budget = sum(parts.values()), config.agent.first_prompt_tokens
        if total > budget:
            self.report.warnings.append(
                f"the first prompt is about {total} tokens, over agent.first_prompt_tokens ({budget}): the logs got "
                "their minimum and the code the evidence points at is never cut")
        return {**parts, "total": total, "budget": budget}

    def _ending(self, outcome: str, reason: str, detail: str) -> dict[str, object]:
        """How the run ends, for the session_end (and on_error) hooks."""
        report = self.report
        return {"outcome": outcome, "reason": reason, "detail": self.redact(detail)[:1000],
                "pr_url": report.pr.url if report.pr else "", "cost_usd": report.cost_usd, "trace_id": report.trace_id}

    def _remediate_in(self, setup: Setup, sandbox: Sandbox, hooks: Hooks) -> None:
        config, report = setup.config, self.report
        followup = self.followup
        if followup is not None:  # a later run of the incident: what the earlier ones spent is gone
            config = followup.budgeted(config)
        if config.tests.setup:
            with self.stage("test_setup"):
                install(setup, sandbox)
        price = price_of(config)
        report.model, report.budget_usd = config.llm.api_model, config.costs.budget_usd
        with ExitStack() as stack:
            with self.stage("mcp"):
                started, self._hub = self._hub, None
                hub = stack.enter_context(started or self.edges.mcp(config.mcp.servers, setup.environ,
                                                                    setup.telemetry))
                report.mcp_withheld = [w for server in config.mcp.servers
                                       for w in withheld_tools(server, hub.offered.get(server.name, []))]
                for server in {w["server"] for w in report.mcp_withheld}:
                    names = ", ".join(w["tool"] for w in report.mcp_withheld if w["server"] == server)
                    self.runner.log(f"MCP server {server}: not offered to the model: {names}")
            commands = bool(config.guardrails.allowed_commands)
            review = followup.prompt() if followup is not None else ""
            reserved = SCOPE_NOTE_TOKENS + first_prompt_tokens(SYSTEM_PROMPT + review, tool_schemas(commands, hub))
            with self.stage("context"):
                pack = gather(setup, hub, report.warnings, reserved)
                report.context = summary(pack)
            policy, warning = policy_for(config, pack.implicated_files, setup.redact.values,
                                         setup.git.tracked_files())
            report.warnings += [warning] if warning else []
            workspace = Workspace(setup.repo, policy)
            hooks.workspace = workspace
            tests = TestRunner(setup, workspace, sandbox, report.warnings)
            report.test_runs = tests.runs  # the same list: runs are added as they happen
            toolbox = Toolbox.for_run(setup, workspace, tests.for_agent, hub, sandbox, hooks)
            api_key = setup.environ.get(config.llm.api_key_env) or ""
            model = self.edges.chat(config.llm, api_key, config.llm.base_url or setup.environ.get("OPENAI_BASE_URL"))
            agent = Agent.for_config(config, model, toolbox, price, setup.telemetry)
            prompt = pack.render() + "\n" + scope_note(policy.scope_files, policy.protected,
                                                      policy.max_files_modified, policy.max_lines_changed).render()
            if review:
                prompt += "\n" + review
            report.context["first_prompt_tokens"] = self._first_prompt(config, toolbox, prompt)
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
            # Failing or erroring tests (a fixture that errors, a locale the machine lacks) that all fail the same
            # way before the fix are not the fix's; a runner that crashed or timed out is never excused.
            judged = run.status == "failed" or (run.status == "error" and run.errors > 0)
            if verified.blamed or not judged:
                stopped = f" (stopped after {run.stopped_after} failures)" if run.stopped_after else ""
                raise Stop(Reason.TESTS_FAILED, f"affected tests {run.summary()}{stopped}")
            report.warnings.append("tests failing before the fix too, not blamed on it: "
                                   + ", ".join(verified.proof.pre_existing_failures[:10]))
        drift = workspace.drift(workspace_drift(setup.git, workspace.root, workspace.overlay()),
                                 dict.fromkeys(sandbox.dirty_at_start))
        report.guardrail_events = [*report.guardrail_events, *([drift] if drift else [])]
        # Honest about what passed: failures that predate the fix are named, not hidden behind "passed", and such
        # a PR is a draft with a label that says why.
        reason = Reason.TESTS_PASSED if run.ok else Reason.TESTS_PASS_EXCEPT_PRE_EXISTING
        with self.stage("deliver"):
            report.pr = self._deliver(setup, workspace.changes, workspace.restore, flagged=not run.ok) \
                if self.ships else None
        done = (f"pull request {report.pr.url}" if report.pr else "proposal written for command: deliver"
                if self.mode == "propose" else "dry run: the change was not pushed")
        self.end(Outcome.FIXED, reason, done)

    def _deliver(self, setup: Setup, changes: ChangeSet, after_commit: Callable[[], None],
                 flagged: bool = False) -> PullRequest:
        if self.followup is not None:
            return self.followup.deliver(setup, changes, self.report)
        with setup.telemetry.span("github get_repo"):
            github = self._github()
        reason = Reason.TESTS_PASS_EXCEPT_PRE_EXISTING if flagged else Reason.TESTS_PASSED
        return deliver(setup, github, changes, self.request.github_token, self.report.trace_id,
                       self.report.agent_summary, lambda: (self._pr_body(reason),
                                                           self.redact(render_changes(self.report))), after_commit,
                       flagged)

    def _pr_body(self, reason: Reason) -> str:
        """The report, the table of the incident's runs, and the marker later runs continue from."""
        report = self.report
        assert report.incident is not None
        state = marker.State(report.incident, self.traceparent, (marker.RunEntry(
            report.mode, report.trace_id, str(Outcome.FIXED), str(reason), report.cost_usd,
            datetime.now(UTC).isoformat(timespec="seconds"), summary=self.redact(report.agent_summary or "")[:1000],
            tests=report.tests.summary() if report.tests else ""),))
        body = self.redact(render_pr_body(report))
        return marker.replace_in(marker.with_runs_table(body, state), state)

    def _write_proposal(self, setup: Setup) -> Path:
        report = self.report
        return proposal.write_for(setup, proposal.Proposal(
            setup.incident.id, setup.git.base, str(report.outcome), str(report.reason), report.detail,
            proposal.describe(report.changes, setup.git), report.agent_summary, self.traceparent,
            self.redact.deep(report.to_dict())))  # type: ignore[arg-type]

    def _read_proposal(self, setup: Setup) -> proposal.Proposal:
        return proposal.read_for(setup)

    def _deliver_proposal(self, setup: Setup, handed: proposal.Proposal) -> None:
        """command: deliver. The proposal is checked again against the guardrails of this checkout's config (the
        base branch's), on the base commit it names; only then is it committed, pushed and opened as a PR."""
        report = self.report
        setup = proposal.on_its_base(setup, handed)
        proposal.carry(handed, report, setup)
        changes, refusal = proposal.check(handed, setup)
        report.changes = changes
        if refusal:
            report.guardrail_events = [refusal]
            raise Stop(Reason.PROPOSAL_REFUSED, f"the proposal was refused on delivery ({refusal.rule}): "
                       f"{refusal.detail}")
        if handed.outcome != Outcome.FIXED:
            raise stop(Outcome(handed.outcome), Reason.parse(handed.reason), f"first job: {handed.detail}")
        if not len(changes):
            raise Stop(Reason.NO_CHANGE, "the proposal holds no change")
        with self.stage("deliver"):
            report.pr = self._deliver(setup, changes, lambda: None,
                                      flagged=Reason.parse(handed.reason) == Reason.TESTS_PASS_EXCEPT_PRE_EXISTING)
        self.end(Outcome.FIXED, Reason.parse(handed.reason), f"pull request {report.pr.url}")

    def github(self) -> GitHub:
        return self._github()

    def _github(self) -> GitHub:
        env = self.request.environ
        return self.edges.github(self.request.github_token or "", env.get("GITHUB_API_URL") or "https://api.github.com",
                                 env.get("GITHUB_REPOSITORY", ""))

    def end(self, outcome: Outcome, reason: Reason, detail: str) -> None:
        self.report.outcome, self.report.reason, self.report.detail = outcome, reason, self.redact(detail)
        if outcome == Outcome.SKIPPED:
            self.runner.log(f"nothing to do ({reason}): {self.report.detail}")
        if outcome not in (Outcome.FIXED, Outcome.SKIPPED) and self.ships and self.escalating:
            self._escalate()

    def _escalate(self) -> None:
        setup, env, token = self.setup, self.request.environ, self.request.github_token
        can_open_issue = bool(token and env.get("GITHUB_REPOSITORY"))
        self.report.escalation = escalate(self.report, setup.config if setup else None, setup.git if setup else None,
                                          env, token, self._github if can_open_issue else None, self.telemetry,
                                          self.redact)


def finish(run: Run, report_path: Path | None) -> int:
    """Flush telemetry (bounded), then write the report, the outputs and the summary. Runs for every outcome."""
    run.report.telemetry = run.telemetry.shutdown()
    if run.report.telemetry["error"]:
        run.runner.warning(f"telemetry: the trace was not exported to {run.report.telemetry['exporter']}: "
                           f"{run.report.telemetry['error']}")
    return publish(run.report, run.runner, run.redact, run.request.environ, report_path, run.proposal_path)
