"""What a run leaves behind, for every outcome: the JSON report, the Actions outputs, the step summary and
annotations, and one JSON line in the log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from remediate.actions import Runner, report_location
from remediate.outcome import Outcome
from remediate.report import Report, render_summary
from remediate.secrets import Redactor


def publish(report: Report, runner: Runner, redact: Redactor, environ: Mapping[str, str], report_path: Path | None,
            proposal_path: Path | None = None) -> int:
    """Returns the exit code."""
    report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    slug = report.incident.branch_slug if report.incident else "unknown"
    path, shown_path = (report_path, str(report_path)) if report_path else report_location(environ, slug)
    try:
        report.write(path, redact)
    except OSError as exc:
        runner.error(f"could not write the report to {path}: {exc}")
    outputs = {"outcome": str(report.outcome), "reason": str(report.reason),
               "pr-url": report.pr.url if report.pr else "", "pr-number": str(report.pr.number) if report.pr else "",
               "branch": report.pr.branch if report.pr else "", "trace-id": report.trace_id,
               "cost-usd": f"{report.cost_usd:.6f}", "llm-calls": str(len(report.llm_calls)),
               "report-path": shown_path,
               "escalation-url": report.escalation.issue_url or "" if report.escalation else "",
               "attempt-branch": report.attempt_branch or "", "proposal-path": str(proposal_path or ""),
               "validation": str((report.validation or {}).get("verdict") or "")}
    runner.set_outputs(outputs)
    runner.write_summary(redact(render_summary(report, shown_path)))
    if report.outcome == Outcome.ERROR:
        runner.error(redact(report.detail or str(report.reason)))
    elif report.outcome == Outcome.ESCALATED:
        runner.warning(redact(f"escalated: {report.reason}: {report.detail}"))
    for warning in report.warnings[:5]:
        if not warning.startswith("Traceback"):
            runner.warning(redact(warning.splitlines()[0][:300]))
    runner.log(json.dumps({"outcome": report.outcome, "reason": report.reason, "pr": outputs["pr-url"] or None,
                           "escalation": outputs["escalation-url"] or None, "trace_id": report.trace_id,
                           "cost_usd": report.cost_usd, "report": shown_path}))
    return report.exit_code
