"""Record types: pure values that stages return and the report is built from. The bottom of the
module graph: this imports nothing of the package, so every layer may use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class McpCallRecord:
    server: str
    tool: str
    ok: bool
    duration_ms: int
    by: str  # "prefetch" or "agent"


@dataclass(frozen=True)
class GuardrailEvent:
    tool: str
    target: str
    rule: str
    detail: str
    arguments: str = ""  # what was asked, redacted and cut: "the model tried to run kubectl apply" stays readable

    def to_dict(self) -> dict[str, str]:
        return {"tool": self.tool, "target": self.target, "rule": self.rule, "detail": self.detail,
                "arguments": self.arguments}


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    branch: str
    created: bool


@dataclass(frozen=True)
class Escalation:
    channels: tuple[str, ...]
    issue_url: str | None
    issue_number: int | None
    failed_channels: tuple[str, ...] = ()
    attempt_branch: str | None = None


@dataclass(frozen=True)
class TestFailure:
    __test__ = False  # a result type, not a pytest test class

    name: str
    message: str


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # a result type, not a pytest test class

    command: tuple[str, ...]
    selected: tuple[str, ...]
    status: str  # passed | failed | error | timed_out | no_tests
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration_s: float = 0.0
    failures: tuple[TestFailure, ...] = ()  # the first ones, with messages, for people
    failed_tests: tuple[str, ...] = ()  # every failed or errored test, by name
    output_tail: str = ""
    exit_code: int | None = None
    selection_reason: Mapping[str, str] = field(default_factory=dict)
    stopped_after: int | None = None  # pytest stopped at this many failures: later tests did not run
    predating: tuple[str, ...] = ()  # failed tests that fail on the code before the change too (told to the model)
    reported: tuple[str, ...] = ()  # every module (JUnit classname) the report has a result for

    @property
    def complete(self) -> bool:
        return self.stopped_after is None

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def summary(self) -> str:
        return (f"{self.status}: {self.passed} passed, {self.failed} failed, {self.errors} errors, "
                f"{self.skipped} skipped in {self.duration_s:.1f}s")

    def to_dict(self) -> dict[str, Any]:
        return {"command": list(self.command), "selected": list(self.selected), "status": self.status,
                "passed": self.passed, "failed": self.failed, "errors": self.errors, "skipped": self.skipped,
                "duration_s": round(self.duration_s, 3),
                "failures": [{"name": f.name, "message": f.message} for f in self.failures],
                "output_tail": self.output_tail, "exit_code": self.exit_code,
                "selection_reason": dict(self.selection_reason), "stopped_after_failures": self.stopped_after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRun:
        """A run as a report recorded it (the first job's, in two-job mode): untrusted, so only well-typed fields."""
        def ints(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key)
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

        status = data.get("status")
        failures = data.get("failures") if isinstance(data.get("failures"), list) else []
        return cls(strings("command"), strings("selected"),
                   status if status in ("passed", "failed", "error", "timed_out", "no_tests") else "error",
                   ints("passed"), ints("failed"), ints("errors"), ints("skipped"),
                   float(data["duration_s"]) if isinstance(data.get("duration_s"), (int, float)) else 0.0,
                   tuple(TestFailure(str(f.get("name", "")), str(f.get("message", ""))) for f in failures[:20]
                         if isinstance(f, dict)),
                   output_tail=str(data.get("output_tail") or "")[-4000:])


@dataclass(frozen=True)
class RegressionProof:
    tests: tuple[str, ...]  # test files the fix added or changed
    verdict: str  # fails_before_passes_after | passes_before | fails_after | no_new_test | not_run
    detail: str
    pre_existing_failures: tuple[str, ...] = ()
    before: TestRun | None = None

    @property
    def proven(self) -> bool:
        return self.verdict == "fails_before_passes_after"

    def to_dict(self) -> dict[str, Any]:
        return {"tests": list(self.tests), "verdict": self.verdict, "detail": self.detail,
                "pre_existing_failures": list(self.pre_existing_failures),
                "before": None if self.before is None else {
                    "status": self.before.status, "passed": self.before.passed, "failed": self.before.failed,
                    "errors": self.before.errors, "failures": [f.name for f in self.before.failures]}}


@dataclass(frozen=True)
class CheckRun:
    """One run of a hook or a quality gate. `decision`: allow, block, error (allowed anyway, `on_hook_error:
    allow` or not a pre-event), timeout, or for a gate passed/failed; `kind` is "hook" or "gate"."""
    kind: str
    event: str  # the hook's event; "finish" for a gate
    name: str
    exit_code: int | None
    duration_s: float
    decision: str
    output_tail: str = ""
    background: bool = False  # an async hook: its decision is recorded, never acted on
    required: bool = True  # gates: whether a failure keeps the model from finishing
    files_changed: tuple[str, ...] = ()  # files the hook changed that became part of the vetted change

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "event": self.event, "name": self.name, "exit_code": self.exit_code,
                "duration_s": round(self.duration_s, 3), "decision": self.decision, "output_tail": self.output_tail,
                "async": self.background, "required": self.required, "files_changed": list(self.files_changed)}
