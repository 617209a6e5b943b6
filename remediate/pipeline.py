"""One run = one incident: incident -> config -> context -> agent -> tests -> deliver | escalate -> report."""

from __future__ import annotations

import json
import re
import shlex
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace

from remediate.actions import Runner, report_location
from remediate.agent.budget import BudgetMeter, price_for
from remediate.agent.llm import LLMError, OpenAIChat
from remediate.agent.loop import Agent
from remediate.agent.tools import Toolbox
from remediate.config import Config, EscalationConfig, TelemetryConfig, load_config
from remediate.context.pack import build_context, scope_note
from remediate.deliver.delivery import DeliveryError, commit_change, open_or_update_pr, push
from remediate.deliver.escalation import EscalationContext, escalate_to_issue, http_channels
from remediate.deliver.github import GitHubError, connect_repo
from remediate.errors import UserError
from remediate.gitops import Git, GitError
from remediate.guard.guardrails import PathRefused, WritePolicy
from remediate.guard.workspace import Workspace
from remediate.incident import payload as incident_mod
from remediate.incident.payload import Incident
from remediate.mcp.client import McpError, McpHub
from remediate.processes import run_bounded
from remediate.report import (
    Escalation,
    Report,
    render_changes,
    render_escalation,
    render_pr_body,
    render_summary,
)
from remediate.secrets import Redactor, looks_secret, scrubbed_env
from remediate.telemetry import Telemetry, parent_context, set_error, setup, trace_id_of
from remediate.verify.coverage_map import CoverageMap
from remediate.verify.execute import TestRun, run_tests
from remediate.verify.regression import blamed_failures, changed_tests, judge, run_before
from remediate.verify.selection import select_with_coverage


@dataclass(frozen=True)
class RunRequest:
    repo: Path
    environ: Mapping[str, str]
    inputs: Mapping[str, str]
    event_name: str = "cli"
    event: Mapping[str, Any] = field(default_factory=dict)


class Escalate(Exception):
    """The run ends without a PR; the reason goes to humans."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class Run:
    request: RunRequest
    runner: Runner
    report: Report = field(default_factory=Report)
    redact: Redactor = field(default_factory=Redactor)
    telemetry: Telemetry | None = None
    config: Config | None = None
    incident: Incident | None = None
    github_token: str | None = None
    git: Git | None = None
    _base: tuple[list[str], dict[str, str]] | None = None
    _coverage: CoverageMap | bool | None = None  # False: configured but unreadable

    @property
    def dry_run(self) -> bool:
        return self.request.inputs.get("dry-run", "false").lower() in ("true", "1", "yes")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        span_cm = self.telemetry.span(f"stage {name}") if self.telemetry else None
        try:
            with self.runner.group(name):
                if span_cm:
                    with span_cm:
                        yield
                else:
                    yield
        finally:
            # Recorded for a stage that fails too: that is the timing a post-mortem looks for.
            self.report.timings[name] = self.report.timings.get(name, 0.0) + time.monotonic() - started

    # ------------------------------------------------------------------------------------------
    def execute(self) -> Report:
        report = self.report
        report.dry_run = self.dry_run
        self.github_token = self.request.inputs.get("github-token") or self.request.environ.get("GITHUB_TOKEN")
        self.redact.add(self.github_token)
        self.runner.mask(self.github_token)
        self.telemetry = setup(TelemetryConfig())
        try:
            # Parsed once, before the incident (which needs trigger.event_type); a config error is raised
            # after the incident is read, so a missing incident id is still the error people see first.
            config_error: UserError | None = None
            with self.stage("config"):
                try:
                    self.config = load_config(self.request.repo, self.request.inputs.get("config"),
                                              self.request.inputs)
                except UserError as exc:
                    config_error = exc
            with self.stage("incident"):
                event_type = self.config.trigger.event_type if self.config else "incident"
                self.incident = incident_mod.from_event(self.request.event_name, self.request.event,
                                                        self.request.inputs, event_type=event_type)
                report.incident = self.incident
            if config_error or self.config is None:
                raise config_error or UserError("no configuration", field="config")
            report.config_source = self.config.source
            self._register_secrets()
            self.telemetry = setup(self.config.telemetry)
            self._traced()
        except UserError as exc:
            self._end("error", "bad_input", exc.one_line())
        except Exception as exc:
            self._end("error", "internal_error", f"{type(exc).__name__}: {exc}")
            report.warnings.append(self.redact("".join(traceback.format_exception(exc))[-3000:]))
        return report

    def _traced(self) -> None:
        assert self.telemetry and self.incident and self.config
        tracer = self.telemetry
        parent = parent_context(self.incident.traceparent)
        with tracer.tracer.start_as_current_span(
                "invoke_agent remediate", context=parent, kind=trace.SpanKind.INTERNAL,
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "remediate",
                            "remediate.incident.id": self.incident.id,
                            "remediate.trigger": self.incident.trigger}) as root:
            self.report.trace_id = trace_id_of(root)
            template = self.config.telemetry.trace_url_template
            if template:
                self.report.trace_url = template.replace("{trace_id}", self.report.trace_id)
            try:
                self._remediate()
            except Escalate as esc:
                self._end("escalated", esc.reason, esc.detail)
            except UserError as exc:
                self._end("error", "bad_input", exc.one_line())
            except (McpError, LLMError, GitHubError, GitError) as exc:
                self._end("error", _service_reason(exc), str(exc))
            root.set_attribute("remediate.outcome", self.report.outcome)
            root.set_attribute("remediate.cost_usd", self.report.cost_usd)
            root.set_attribute("gen_ai.usage.input_tokens", sum(c["input_tokens"] for c in self.report.llm_calls))
            root.set_attribute("gen_ai.usage.output_tokens", sum(c["output_tokens"] for c in self.report.llm_calls))
            root.set_attribute("remediate.reason", self.report.reason)
            if self.report.outcome == "error":
                set_error(root, self.report.reason)

    def _register_secrets(self) -> None:
        assert self.config
        env = self.request.environ
        names = [self.config.llm.api_key_env]
        for server in self.config.mcp.servers:
            if server.auth:
                names += [server.auth.token_env, server.auth.client_secret_env, server.auth.private_key_env]
            # A header value is a credential more often than not; an env value when its name says so.
            names += [ref for ref, key in server.referenced_variables().items()
                      if key in server.headers or looks_secret(ref) or looks_secret(key)]
            for value in server.headers.values():
                self.redact.add(value)
        for name in filter(None, names):
            self.redact.add(env.get(name))
            self.runner.mask(env.get(name))
        escalation = self.config.escalation
        for channel_env in (escalation.pagerduty and escalation.pagerduty.routing_key_env,
                            escalation.webhook and escalation.webhook.url_env,
                            escalation.slack and escalation.slack.webhook_url_env):
            if channel_env:
                self.redact.add(env.get(channel_env))
                self.runner.mask(env.get(channel_env))

    # ------------------------------------------------------------------------------------------
    def _remediate(self) -> None:
        assert self.config and self.incident
        config, env = self.config, self.request.environ
        self.git = Git(self.request.repo.resolve(), scrubbed_env(env))
        self._preflight()
        if config.tests.setup:
            with self.stage("test_setup"):
                self._test_setup()
        api_key = env.get(config.llm.api_key_env) or ""
        price = price_for(config.llm.model, config.costs.prices)
        if price is None:
            raise UserError(f"no price is known for model {config.llm.model!r}", field="costs.prices",
                            hint=f"add costs.prices.{config.llm.api_model}: {{input: , cached_input: , output: }} "
                                 "in USD per million tokens")
        self.report.model = config.llm.api_model
        self.report.budget_usd = config.costs.budget_usd
        hub = McpHub(config.mcp.servers, env, telemetry=self.telemetry)
        with self.stage("mcp"):
            hub.__enter__()
        try:
            with self.stage("context"):
                pack = self._context(hub)
            policy = self._policy(pack.implicated_files)
            self._coverage_map()  # read before the model acts
            workspace = Workspace(self.request.repo, policy)
            toolbox = Toolbox(workspace, self.redact, lambda paths: self._run_tests(workspace, paths),
                              self.git, hub, config.guardrails.allowed_commands,
                              config.guardrails.blocked_commands, scrubbed_env(env, config.tests.env),
                              config.guardrails.max_refusals, telemetry=self.telemetry)
            model = OpenAIChat(config.llm, api_key, config.llm.base_url or env.get("OPENAI_BASE_URL") or None)
            agent = Agent(model, toolbox, BudgetMeter(price, config.costs.budget_usd), self.telemetry, "openai",
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
                    self.report.llm_calls = agent.per_call
                    self.report.guardrail_events = toolbox.events
                    self.report.changes = workspace.changes
            self.report.mcp_calls = list(hub.records)
        finally:
            hub.__exit__(None, None, None)
        self.report.agent_summary = result.detail if result.finished else None
        if not result.finished:
            raise Escalate(result.reason, result.detail)
        if not len(workspace.changes):
            raise Escalate("no_change", "the model finished without changing any file")
        with self.stage("tests"):
            run = self._run_tests(workspace, None)
            self.report.tests = run
            new_tests = changed_tests(workspace.changes)
            before = None
            if new_tests or not run.ok:
                with self._span("regression_proof"):
                    before = run_before(self.git, workspace.changes, list(run.selected),
                                        lambda tree, paths: self._execute_tests(tree, paths, {}, complete=True))
            self.report.regression = judge(new_tests, before, run)
            if not run.ok and not run.complete and not blamed_failures(run, self.report.regression):
                # Stopped early on failures that all predate the fix: the tests not yet run decide.
                run = self._run_tests(workspace, None, complete=True)
                self.report.tests = run
                self.report.regression = judge(new_tests, before, run)
        if not run.ok:
            blamed = blamed_failures(run, self.report.regression)
            if blamed or run.status != "failed":
                stopped = f" (stopped after {run.stopped_after} failures)" if run.stopped_after else ""
                raise Escalate("tests_failed", f"affected tests {run.summary()}{stopped}")
            self.report.warnings.append("tests failing before the fix too, not blamed on it: "
                                        + ", ".join(self.report.regression.pre_existing_failures[:10]))
        with self.stage("deliver"):
            self._deliver(workspace)
        # Honest about what passed: failures that predate the fix are named, not hidden behind "passed".
        reason = "tests_passed" if run.ok else "tests_pass_except_pre_existing_failures"
        self._end("fixed", reason, "dry run: the change was not pushed" if self.dry_run
                  else f"pull request {self.report.pr.url if self.report.pr else ''}".strip())

    def _preflight(self) -> None:
        """Fail before spending money on what would fail at the end anyway."""
        assert self.config and self.git
        env = self.request.environ
        if not env.get(self.config.llm.api_key_env):
            raise UserError(f"environment variable {self.config.llm.api_key_env} is not set",
                            field="llm.api_key_env", hint="pass the LLM key as a secret in the step's env")
        if not (self.request.repo / ".git").exists():
            raise UserError(f"{self.request.repo} is not a git checkout", field="GITHUB_WORKSPACE",
                            hint="run actions/checkout before this action")
        if not self.dry_run and not (self.github_token and env.get("GITHUB_REPOSITORY")):
            raise UserError("a GitHub token and GITHUB_REPOSITORY are needed to open a pull request",
                            field="github-token", hint="set them, or use dry-run")

    def _context(self, hub: McpHub) -> Any:
        assert self.config and self.incident and self.git
        texts: dict[str, str] = {}
        for server in self.config.mcp.servers:
            for entry in server.prefetch:
                name = entry if isinstance(entry, str) else entry.tool
                tool = hub.find(server.name, name)
                if tool is None:
                    if not isinstance(entry, str):
                        self.report.warnings.append(f"prefetch: MCP server {server.name!r} has no tool {name!r}")
                    continue
                args = (_prefetch_arguments(tool.input_schema, self.incident) if isinstance(entry, str)
                        else _filled(entry.arguments, self.incident))
                try:
                    result = hub.call(tool, args, by="prefetch")
                    texts[f"{server.name}/{name}"] = ("[the tool reported an error]\n" if result.is_error
                                                      else "") + result.text
                except McpError as exc:
                    self.report.warnings.append(str(exc))
        tracked = self.git.tracked_files()
        commit = self.incident.suspect.commit
        pack = build_context(self.incident, read=lambda p: _read_text(self.request.repo / p), tracked=tracked,
                             commit_text=self.git.show_commit(commit) if commit else None, mcp_texts=texts,
                             redact=self.redact, log_budget_tokens=self.config.mcp.log_budget_tokens)
        self.report.context = {"logs_chars_before": pack.logs_chars_before,
                               "logs_chars_after": pack.logs_chars_after, "logs": list(pack.logs),
                               "implicated_files": sorted(pack.implicated_files),
                               "prompt_chars": len(pack.render())}
        return pack

    def _policy(self, implicated: frozenset[str]) -> WritePolicy:
        assert self.config
        g = self.config.guardrails
        scope: frozenset[str] | None = None
        if g.edit_scope == "suspects":
            if implicated:
                scope = implicated
            else:
                self.report.warnings.append("the diagnosis names no file found in the repository: "
                                            "the edit scope is the whole repository")
        globs = ("test_*.py", "*_test.py", "tests/**", "test/**", "conftest.py", "*.test.*", "*.spec.*",
                 "__tests__/**", "*_test.go", *g.extra_scope)
        protected = list(g.protected_files)
        if self.config.tests.coverage_map:  # it decides which tests judge the fix: never the model's to edit
            protected.append("/" + self.config.tests.coverage_map.lstrip("/"))
        return WritePolicy(tuple(protected), g.max_files_modified, g.max_lines_changed, scope, globs,
                           frozenset(self.redact.values))

    def _run_tests(self, workspace: Workspace, paths: list[str] | None, complete: bool = False) -> TestRun:
        assert self.config and self.git
        config = self.config.tests
        reason: dict[str, str] = {}
        if paths is None and config.mode == "auto":
            tracked, base = self._base_sources(workspace)
            sources = dict(base)
            for change in workspace.changes:
                if change.path.endswith(".py"):
                    if change.after is None:
                        sources.pop(change.path, None)
                    else:
                        sources[change.path] = change.after
            selection = select_with_coverage(self._coverage_map(), base, sources, workspace.changes.files_touched,
                                             config.map, tracked)
            paths, reason = list(selection.tests), dict(selection.reason)
            if not paths and config.when_none_selected == "escalate":
                return TestRun(tuple(config.command), (), "no_tests",
                               output_tail="no test exercises the change (tests.when_none_selected: escalate)")
            if not paths:
                reason = {"(whole suite)": "no test exercises the change (tests.when_none_selected: run_all)"}
        elif paths is None:
            paths, reason = [], {"(whole suite)" if config.mode == "all" else "(command)": f"tests.mode: {config.mode}"}
        return self._execute_tests(self.request.repo, paths, reason, complete)

    def _test_setup(self) -> None:
        """The project's test dependencies, installed before any money is spent: if they cannot be, no test
        can run, and on-call hears why."""
        assert self.config
        config = self.config.tests
        with self._span("test_setup"):
            done = run_bounded(config.setup, self.request.repo, scrubbed_env(self.request.environ, config.env),
                               config.timeout_seconds)
        tail = self.redact("\n".join(done.output.splitlines()[-30:]))
        if done.timed_out or done.exit_code != 0:
            why = (f"timed out after {config.timeout_seconds:g} s" if done.timed_out
                   else done.start_error or f"exit code {done.exit_code}")
            raise Escalate("test_setup_failed", f"tests.setup ({shlex.join(config.setup)}) failed: {why}\n{tail}")

    def _coverage_map(self) -> CoverageMap | None:
        """tests.coverage_map, read once; an unreadable map is a warning, and the import graph decides."""
        assert self.config
        path_text = self.config.tests.coverage_map
        if not path_text:
            return None
        if self._coverage is None:
            path = Path(path_text) if Path(path_text).is_absolute() else self.request.repo / path_text
            try:
                self._coverage = CoverageMap.load(path)
            except (OSError, ValueError) as exc:
                self.report.warnings.append(f"tests.coverage_map {path_text}: {exc}; selecting by imports only")
                self._coverage = False
        return self._coverage or None

    def _base_sources(self, workspace: Workspace) -> tuple[list[str], dict[str, str]]:
        """Tracked files and their Python sources before the run: read once, they do not change."""
        if self._base is None:
            assert self.git
            tracked = self.git.tracked_files()
            base = {}
            for path in tracked:
                if path.endswith(".py"):
                    with suppress(PathRefused, OSError):
                        base[path] = workspace.original(path) or ""
            self._base = (tracked, base)
        return self._base

    def _execute_tests(self, root: Path, paths: list[str], reason: dict[str, str], complete: bool = False) -> TestRun:
        assert self.config and self.telemetry
        config = self.config.tests
        env = scrubbed_env(self.request.environ, config.env)
        with self.telemetry.span("test_run", {"remediate.tests.selected": len(paths)}) as span:
            run = run_tests(root, config.command, paths, env=env, timeout_s=config.timeout_seconds, reason=reason,
                            junit_glob=config.junit_glob, max_failures=0 if complete else config.max_failures)
            span.set_attribute("remediate.tests.status", run.status)
        return replace(run, output_tail=self.redact(run.output_tail))

    def _deliver(self, workspace: Workspace) -> None:
        assert self.config and self.incident and self.git
        if self.dry_run:
            return
        env = self.request.environ
        with self._span("github get_repo"):
            repo = connect_repo(self.github_token or "", _api_url(env), env.get("GITHUB_REPOSITORY", ""))
        current = _current_branch(self.git)
        if current and current.startswith(self.config.delivery.branch_prefix):
            current = None  # a checkout of an earlier hotfix is no base for the next one
        base = self.config.delivery.base_branch or current or repo.default_branch
        try:
            with self._span("git commit"):
                commit = commit_change(self.git, workspace.changes, self.incident, self.config.delivery, base,
                                       self.report.trace_id, self.report.agent_summary)
            with self._span("git push", {"remediate.branch": commit.branch}):
                push(self.git, commit, self.github_token, self.incident, self.config.delivery.bot_email)
        except DeliveryError as exc:
            raise Escalate(exc.reason, f"{exc.detail}. The fix and its passing tests are in the report.") from None
        self.report.pr = None
        with self._span("github pull_request"):
            self.report.pr = open_or_update_pr(repo, commit, self.incident,
                                               self.redact(render_pr_body(self.report)), self.config.delivery,
                                               self.redact(render_changes(self.report)))

    # ------------------------------------------------------------------------------------------
    def _end(self, outcome: str, reason: str, detail: str) -> None:
        self.report.outcome = outcome
        self.report.reason = reason
        self.report.detail = self.redact(detail)
        if outcome != "fixed":
            self._escalate()

    def _escalate(self) -> None:
        """Every configured channel, each on its own: one failing never hides the others."""
        if self.dry_run:
            return
        env = self.request.environ
        config = self.config.escalation if self.config else EscalationConfig()
        delivered: list[str] = []
        failed: list[str] = []
        if config.push_attempt:
            self._push_attempt(delivered, failed)
        markdown = self.redact(render_escalation(self.report))
        issue_url = issue_number = None
        if config.github_issue and self.github_token and env.get("GITHUB_REPOSITORY"):
            try:
                with self._span("github escalation_issue"):
                    repo = connect_repo(self.github_token, _api_url(env), env["GITHUB_REPOSITORY"])
                    issue_url, issue_number = escalate_to_issue(repo, self.incident, markdown, self.report.reason,
                                                                config)
                delivered.append("github_issue")
            except Exception as exc:
                failed.append("github_issue")
                self.report.warnings.append(self.redact(f"escalation channel github_issue failed: {exc}"))
        ctx = EscalationContext(self.report, markdown, _run_url(env), issue_url, self.redact)
        for name, send in http_channels(config, ctx, env, self.redact.deep(self.report.to_dict())):
            try:
                with self._span(f"escalate {name}"):
                    send()
                delivered.append(name)
            except Exception as exc:
                failed.append(name)
                self.report.warnings.append(self.redact(f"escalation channel {name} failed: {exc}"))
        self.report.escalation = Escalation(tuple(delivered), issue_url, issue_number, tuple(failed),
                                            self.report.attempt_branch)

    def _push_attempt(self, delivered: list[str], failed: list[str]) -> None:
        """The attempted change on hotfix-attempt/<id>, without a PR, for on-call to start from."""
        if not (self.git and self.incident and self.config and len(self.report.changes)):
            return
        branch = f"hotfix-attempt/{self.incident.branch_slug}"
        try:
            with self._span("git push attempt"):
                base = _current_branch(self.git) or "HEAD"
                commit = commit_change(self.git, self.report.changes, self.incident, self.config.delivery, base,
                                       self.report.trace_id, self.report.agent_summary, branch=branch)
                push(self.git, commit, self.github_token, self.incident, self.config.delivery.bot_email)
            self.report.attempt_branch = branch
            delivered.append("attempt_branch")
        except Exception as exc:
            failed.append("attempt_branch")
            self.report.warnings.append(self.redact(f"escalation channel attempt_branch failed: {exc}"))

    @contextmanager
    def _span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
        if self.telemetry is None:
            yield
            return
        with self.telemetry.span(name, attributes):
            yield


def _service_reason(exc: Exception) -> str:
    return {McpError: "mcp_unavailable", LLMError: "llm_unavailable", GitHubError: "github_failed",
            GitError: "git_failed"}[type(exc)]


def _prefetch_arguments(schema: Mapping[str, Any], incident: Incident) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    known = {"incident_id": incident.id, "incidentId": incident.id, "id": incident.id,
             "service": incident.service, "commit": incident.suspect.commit}
    return {k: v for k, v in known.items() if k in properties and v is not None}


def _filled(arguments: Mapping[str, Any], incident: Incident) -> dict[str, Any]:
    """Configured prefetch arguments with the incident's fields put in (payload values are data: they fill
    placeholders, they are never parsed as further placeholders)."""
    fields = {"incident_id": incident.id, "service": incident.service or "", "commit": incident.suspect.commit or "",
              "severity": incident.severity or ""}

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(incident_id|service|commit|severity)\}", lambda m: fields[m.group(1)], value)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return {k: fill(v) for k, v in arguments.items()}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    except OSError:
        return None


def _run_url(env: Mapping[str, str]) -> str | None:
    parts = [env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


def _api_url(env: Mapping[str, str]) -> str:
    return env.get("GITHUB_API_URL") or "https://api.github.com"


def _current_branch(git: Git) -> str | None:
    done = git.run("symbolic-ref", "--short", "-q", "HEAD", check=False)
    name = done.stdout.decode().strip()
    return name or None


def finish(run: Run, report_path: Path | None) -> int:
    """Write the report, the outputs and the summary; flush telemetry. Runs for every outcome."""
    report = run.report
    report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    slug = run.incident.branch_slug if run.incident else "unknown"
    path, shown_path = (report_path, str(report_path)) if report_path else report_location(run.request.environ, slug)
    try:
        report.write(path, run.redact)
    except OSError as exc:
        run.runner.error(f"could not write the report to {path}: {exc}")
    runner = run.runner
    outputs = {"outcome": report.outcome, "reason": report.reason,
               "pr-url": report.pr.url if report.pr else "", "pr-number": str(report.pr.number) if report.pr else "",
               "branch": report.pr.branch if report.pr else "", "trace-id": report.trace_id,
               "cost-usd": f"{report.cost_usd:.6f}", "llm-calls": str(len(report.llm_calls)),
               "report-path": shown_path,
               "escalation-url": report.escalation.issue_url or "" if report.escalation else "",
               "attempt-branch": report.attempt_branch or ""}
    runner.set_outputs(outputs)
    runner.write_summary(run.redact(render_summary(report, shown_path)))
    if report.outcome == "error":
        runner.error(report.detail or report.reason)
    elif report.outcome == "escalated":
        runner.warning(f"escalated: {report.reason}: {report.detail}")
    for warning in report.warnings[:5]:
        if not warning.startswith("Traceback"):
            runner.warning(warning.splitlines()[0][:300])
    runner.log(json.dumps({"outcome": report.outcome, "reason": report.reason, "pr": outputs["pr-url"] or None,
                           "escalation": outputs["escalation-url"] or None, "trace_id": report.trace_id,
                           "cost_usd": report.cost_usd, "report": shown_path}))
    if run.telemetry:
        run.telemetry.shutdown()
    return report.exit_code
