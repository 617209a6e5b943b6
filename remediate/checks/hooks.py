"""architect's lifecycle hooks (docs/hooks.md), stricter where safety needs it: they run in the sandbox with a
scrubbed environment, a pre-event hook that fails blocks, what a post_tool_use hook changes is judged like any
write, and their output is redacted and handed to the model as data."""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2
from opentelemetry import context as otel_context

from remediate.checks.shell import ShellRun, bounded, passed_through, run_shell
from remediate.config import PRE_EVENTS, HookConfig, HooksConfig
from remediate.guard.guardrails import Verdict, WritePolicy
from remediate.guard.sandbox import Sandbox
from remediate.guard.workspace import Workspace
from remediate.records import CheckRun
from remediate.run import Setup
from remediate.secrets import Redactor
from remediate.telemetry import Telemetry

BLOCK_EXIT = 2
WITHHELD = "[output withheld: this check is given variables (env:), and what it prints may carry them]"
_CONTROL = dict.fromkeys(range(32), " ") | {9: "\t"}  # no NUL (or other control) into a variable


def fenced(source: str, body: str) -> str:
    """Text from a check, for the model: data from outside, in a fence nothing inside can close."""
    body = body.replace("</untrusted>", "<\\/untrusted>")
    return f"\n<untrusted source=\"{source}\">\n{body}\n</untrusted>"
ASYNC_GRACE_S = 5.0  # beyond an async hook's own timeout, for the sandbox to end it and clean up


@dataclass
class HookResult:
    """What the hooks of one event say. `blocked`: the reason, when a pre-event hook stopped the action."""
    blocked: str | None = None
    context: list[str] = field(default_factory=list)  # additionalContext (or plain stdout): data for the model
    updated_input: dict[str, Any] | None = None
    refusals: list[Verdict] = field(default_factory=list)  # file changes of a hook that were not taken
    warnings: list[str] = field(default_factory=list)  # code-rule warnings on file changes that were taken

    def notes(self) -> str:
        """The hooks' context as the model sees it: fenced as data from outside."""
        if not self.context:
            return ""
        return fenced("hooks", "\n".join(self.context))


@dataclass
class Hooks:
    config: HooksConfig
    sandbox: Sandbox
    workspace: Workspace
    redact: Redactor
    telemetry: Telemetry
    environ: Mapping[str, str]  # the action's: only what a hook's `env:` names is taken from it
    incident_id: str = ""
    deadline: float | None = None  # monotonic: the agent's wall-time limit bounds every hook it fires
    records: list[CheckRun] = field(default_factory=list)
    _background: list[tuple[threading.Thread, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_setup(cls, setup: Setup, sandbox: Sandbox) -> Hooks:
        """The run's hooks. Their workspace becomes the run's once the write policy is known; until then it is
        an empty one, and no hook's change is taken."""
        return cls(setup.config.hooks, sandbox, Workspace(setup.repo, WritePolicy()), setup.redact,
                   setup.telemetry, setup.environ, setup.incident.id)

    def session_end(self, ending: Mapping[str, Any]) -> None:
        """session_end (and on_error, for a run that ends in error) hooks, then every async hook awaited: before
        the sandbox and the process end, so a notifier gets to notify."""
        try:
            if ending.get("outcome") == "error":
                self.fire("on_error", ending)
            self.fire("session_end", ending)
        finally:
            self.wait()

    def fire(self, event: str, context: Mapping[str, Any], payload: Mapping[str, Any] | None = None) -> HookResult:
        """Run the event's hooks that match, in order; the first block ends the event. `context` becomes the
        ARCHITECT_*/REMEDIATE_* variables, `payload` the JSON on stdin (both redacted first)."""
        result = HookResult()
        for hook in self.config.for_event(event):
            if not _matches(hook, context):
                continue
            if hook.async_:
                self._start_background(event, hook, context, payload)
                continue
            self._run(event, hook, context, payload, result)
            if result.blocked is not None:
                break
            if result.updated_input is not None and payload is not None:
                payload = {**payload, "tool_input": result.updated_input}  # the next hook judges what will run
        return result

    def wait(self) -> None:
        """Await every async hook still running, each up to its own timeout: a notifier killed with the process
        never notifies."""
        for thread, timeout in self._background:
            thread.join(timeout + ASYNC_GRACE_S)
        self._background.clear()

    # One hook -------------------------------------------------------------------------------------------
    def _start_background(self, event: str, hook: HookConfig, context: Mapping[str, Any],
                          payload: Mapping[str, Any] | None) -> None:
        parent = otel_context.get_current()  # its span belongs to the run's trace, from whichever thread
        overlay = self.workspace.overlay()

        def go() -> None:
            token = otel_context.attach(parent)
            try:
                run, decision = self._execute(event, hook, context, payload, overlay, background=True)
                self._record(event, hook, run, decision, background=True)
            finally:
                otel_context.detach(token)

        thread = threading.Thread(target=go, name=f"hook {hook.label}", daemon=True)
        thread.start()
        self._background.append((thread, float(hook.timeout)))

    def _run(self, event: str, hook: HookConfig, context: Mapping[str, Any], payload: Mapping[str, Any] | None,
             result: HookResult) -> None:
        run, decision = self._execute(event, hook, context, payload, self.workspace.overlay())
        taken = self._judge(event, hook, run, decision, result)
        self._record(event, hook, run, decision, files_changed=taken)

    def _judge(self, event: str, hook: HookConfig, run: ShellRun, decision: str, result: HookResult
               ) -> tuple[str, ...]:
        """What the hook's run means for the action (into `result`); the files of its change that were taken."""
        done = run.finished
        pre = event in PRE_EVENTS
        if decision == "block":
            reason = (WITHHELD if hook.env else self.redact(done.stderr.strip())[-1000:]) \
                or f"hook {hook.label} blocked it (exit 2)"
            if pre:
                result.blocked = reason
                return ()
            result.context.append(f"[{hook.label}] {reason}")
        elif decision in ("error", "timeout"):
            if pre and hook.on_hook_error == "block":
                why = "timed out" if decision == "timeout" else f"failed (exit {done.exit_code})"
                result.blocked = (f"hook {hook.label} {why}; a pre-event hook that cannot decide blocks "
                                  "(on_hook_error: allow lets the action through)")
            return ()  # a hook that did not finish well changed nothing that counts (a killed formatter's half file)
        elif hook.env:
            if done.output.strip():
                result.context.append(f"[{hook.label}] {WITHHELD}")
        else:
            self._allowed_output(hook, self.redact(done.output), pre, result)
        return self._take_changes(event, hook, run, result)

    def _execute(self, event: str, hook: HookConfig, context: Mapping[str, Any], payload: Mapping[str, Any] | None,
                 overlay: Mapping[str, str | None], background: bool = False) -> tuple[ShellRun, str]:
        env = {**passed_through(hook.env, self.environ), **self._variables(event, context)}
        stdin = self.redact(json.dumps({"event": event, **context, **(payload or {})}, default=str)).encode()
        with self.telemetry.span(f"execute_hook {hook.label}", {
                "remediate.hook.event": event, "remediate.hook.name": hook.label,
                "remediate.hook.async": background}) as span:
            run = run_shell(self.sandbox, overlay, hook.command, bounded(hook.timeout, self.deadline), env, stdin)
            done = run.finished
            decision = ("timeout" if done.timed_out else "error" if done.start_error else
                        "allow" if done.exit_code == 0 else "block" if done.exit_code == BLOCK_EXIT else "error")
            span.set_attribute("remediate.hook.decision", decision)
            if done.exit_code is not None:
                span.set_attribute("remediate.hook.exit_code", done.exit_code)
        return run, decision

    def _record(self, event: str, hook: HookConfig, run: ShellRun, decision: str, background: bool = False,
                files_changed: tuple[str, ...] = ()) -> None:
        tail = WITHHELD if hook.env and run.tail().strip() else self.redact(run.tail())
        with self._lock:  # async hooks record from their own threads
            self.records.append(CheckRun("hook", event, hook.label, run.finished.exit_code, run.duration_s,
                                         decision, tail, background=background, files_changed=files_changed))

    def _variables(self, event: str, context: Mapping[str, Any]) -> dict[str, str]:
        values = {"EVENT": event, "INCIDENT_ID": self.incident_id,
                  **{key.upper(): "" if value is None else str(value) for key, value in context.items()}}
        return {f"{prefix}_{key}": self.redact(value)[:4000].translate(_CONTROL) for key, value in values.items()
                for prefix in ("ARCHITECT", "REMEDIATE")}

    def _allowed_output(self, hook: HookConfig, stdout: str, pre: bool, result: HookResult) -> None:
        text = stdout.strip()
        if not text:
            return
        try:
            said = json.loads(text)
        except json.JSONDecodeError:
            said = None
        if not isinstance(said, dict):
            result.context.append(f"[{hook.label}] {text[-2000:]}")
            return
        extra = said.get("additionalContext")
        if isinstance(extra, str) and extra.strip():
            result.context.append(f"[{hook.label}] {extra.strip()[-2000:]}")
        if pre and isinstance(said.get("updatedInput"), dict):
            result.updated_input = said["updatedInput"]

    def _take_changes(self, event: str, hook: HookConfig, run: ShellRun, result: HookResult) -> tuple[str, ...]:
        """A post_tool_use hook (a formatter) may change files: judged like any write, taken whole or not at all.
        Files any other hook changes are dropped, and that is said."""
        if not run.changed and not run.unreadable:
            return ()
        if event != "post_tool_use":
            result.refusals.append(Verdict.refuse("hook_changed_files", f"hook {hook.label} ({event}) changed "
                                                  f"{', '.join(sorted(run.changed)[:5])}; only post_tool_use hooks "
                                                  "may change files, so nothing was taken", hook.label))
            return ()
        if run.unreadable:
            result.refusals.append(Verdict.refuse("binary_content", f"hook {hook.label} made "
                                                  f"{', '.join(run.unreadable[:5])}: not text files (or links); "
                                                  "none of its changes were taken", run.unreadable[0]))
            return ()
        verdict = self.workspace.adopt(run.changed)
        if not verdict.allowed:
            result.refusals.append(Verdict.refuse(verdict.rule, f"hook {hook.label} changed files: {verdict.detail}; "
                                                  "none of its changes were taken", verdict.target or hook.label))
            return ()
        result.warnings += verdict.warnings
        return tuple(sorted(run.changed))


def _matches(hook: HookConfig, context: Mapping[str, Any]) -> bool:
    """architect's filters: `matcher` on the tool name (from its start), `file_patterns` on the edited path; each
    only where the event has one."""
    tool = context.get("tool_name")
    if hook.matcher != "*" and tool is not None and not re2.match(hook.matcher, str(tool)):
        return False
    path = context.get("file_path")
    if hook.file_patterns and path is not None:
        return any(fnmatch.fnmatch(str(path), pattern) for pattern in hook.file_patterns)
    return True
