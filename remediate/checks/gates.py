"""architect's quality gates: when the model calls `finish`, each gate's command runs in the sandbox on the
change; a required gate that fails sends the model back to work with the output tail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from remediate.checks.hooks import WITHHELD, fenced
from remediate.checks.shell import bounded, passed_through, run_shell
from remediate.config import QualityGateConfig
from remediate.guard.sandbox import Sandbox
from remediate.guard.workspace import Workspace
from remediate.records import CheckRun
from remediate.secrets import Redactor
from remediate.telemetry import Telemetry


@dataclass
class Gates:
    gates: list[QualityGateConfig]
    sandbox: Sandbox
    workspace: Workspace
    redact: Redactor
    telemetry: Telemetry
    environ: Mapping[str, str]
    records: list[CheckRun] = field(default_factory=list)  # every gate run is appended (the run's check record)
    deadline: float | None = None  # monotonic: the agent's wall-time limit bounds the gates too

    def run(self) -> list[CheckRun]:
        """Every gate, in order, on the change as it is now. A gate is a check: what it changes is not taken."""
        overlay = self.workspace.overlay()
        runs = []
        for gate in self.gates:
            with self.telemetry.span(f"execute_hook {gate.name}", {"remediate.hook.event": "quality_gate",
                                                                    "remediate.hook.name": gate.name}) as span:
                run = run_shell(self.sandbox, overlay, gate.command, bounded(gate.timeout, self.deadline),
                                {**passed_through(gate.env, self.environ), "REMEDIATE_GATE": gate.name})
                done = run.finished
                passed = done.exit_code == 0 and not done.timed_out
                span.set_attribute("remediate.hook.decision", "passed" if passed else "failed")
            tail = WITHHELD if gate.env and run.tail().strip() else \
                self.redact(run.tail()) + ("\n[timed out]" if done.timed_out else "")
            runs.append(CheckRun("gate", "finish", gate.name, done.exit_code, run.duration_s,
                                 "passed" if passed else "failed", tail, required=gate.required))
        self.records += runs
        return runs


def feedback(runs: list[CheckRun]) -> str | None:
    """The tool result for `finish` when a required gate failed (None: the model may finish)."""
    failed = [r for r in runs if r.required and r.decision == "failed"]
    if not failed:
        return None
    parts = [f"NOT FINISHED: {len(failed)} required quality gate(s) failed; fix the change and call finish again."]
    for run in failed:
        parts.append(f"--- gate {run.name} (exit {run.exit_code}) ---{fenced('gate', run.output_tail[-1500:])}")
    optional = [r.name for r in runs if not r.required and r.decision == "failed"]
    if optional:
        parts.append("optional gates that failed too (they do not keep you from finishing): " + ", ".join(optional))
    return "\n".join(parts)
