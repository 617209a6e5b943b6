"""The post-mortem report: one record, written as JSON (schema_version 2) and rendered as Markdown."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remediate import __version__
from remediate.guard.changes import ChangeSet
from remediate.incident.payload import Incident
from remediate.inert import code, inert, inline
from remediate.outcome import Outcome, Reason
from remediate.records import CheckRun, Escalation, GuardrailEvent, McpCallRecord, PullRequest, RegressionProof, TestRun

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).parent / "schema" / "report.schema.json"


@dataclass
class Report:
    incident: Incident | None = None
    outcome: Outcome = Outcome.ERROR
    reason: Reason = Reason.NOT_STARTED
    detail: str = ""
    trace_id: str = ""
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished_at: str | None = None
    dry_run: bool = False
    mode: str = "remediate"  # the command: remediate, or propose / deliver in two-job mode
    config_source: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    budget_usd: float | None = None
    llm_calls: list[dict[str, Any]] = field(default_factory=list)
    changes: ChangeSet = field(default_factory=ChangeSet)
    agent_summary: str | None = None
    guardrail_events: list[GuardrailEvent] = field(default_factory=list)
    tests: TestRun | None = None
    mcp_calls: list[McpCallRecord] = field(default_factory=list)
    mcp_withheld: list[dict[str, str]] = field(default_factory=list)  # offered by a server, not to the model
    context: dict[str, Any] = field(default_factory=dict)
    pr: PullRequest | None = None
    escalation: Escalation | None = None
    warnings: list[str] = field(default_factory=list)
    trace_url: str | None = None
    attempt_branch: str | None = None
    regression: RegressionProof | None = None
    sandbox: dict[str, Any] | None = None  # how code of the change was isolated, and what was missing
    telemetry: dict[str, Any] | None = None  # whether the trace was exported, and the error if it was not
    checks: list[CheckRun] = field(default_factory=list)  # every hook and quality gate run
    test_runs: list[dict[str, Any]] = field(default_factory=list)  # every test run asked for: why, what, reused
    ignored_config: list[tuple[str, str]] = field(default_factory=list)  # architect keys loaded, not acted on
    review: dict[str, Any] | None = None  # a run on review of the hotfix PR (remediate/followup/review.py)
    validation: dict[str, Any] | None = None  # a staging validation run (remediate/followup/validation.py)

    @property
    def cost_usd(self) -> float:
        return round(sum(c["cost_usd"] for c in self.llm_calls), 6)

    @property
    def exit_code(self) -> int:
        return Outcome(self.outcome).exit_code

    def to_dict(self) -> dict[str, Any]:
        totals = {k: sum(c.get(k, 0) for c in self.llm_calls)
                  for k in ("input_tokens", "output_tokens", "cached_tokens")}
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "remediate", "version": __version__},
            "incident": self.incident.to_dict() if self.incident else None,
            "outcome": str(self.outcome),
            "reason": str(self.reason),
            "detail": self.detail,
            "trace_id": self.trace_id,
            "trace_url": self.trace_url,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "dry_run": self.dry_run,
            "mode": self.mode,
            "config_source": self.config_source,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "llm": {"model": self.model, "calls": len(self.llm_calls), **totals, "cost_usd": self.cost_usd,
                    "budget_usd": self.budget_usd, "per_call": self.llm_calls},
            "changes": [c.to_dict() for c in self.changes],
            "diff": self.changes.diff(),
            "agent_summary": self.agent_summary,
            "guardrail_events": [e.to_dict() for e in self.guardrail_events],
            "tests": None if not self.tests else {
                **self.tests.to_dict(), "regression_proof": self.regression.to_dict() if self.regression else None},
            "mcp_calls": [{"server": r.server, "tool": r.tool, "ok": r.ok, "duration_ms": r.duration_ms,
                           "by": r.by} for r in self.mcp_calls],
            "mcp_tools_withheld": self.mcp_withheld,
            "context": self.context,
            "pr": None if not self.pr else {"number": self.pr.number, "url": self.pr.url,
                                            "branch": self.pr.branch, "created": self.pr.created},
            "escalation": None if not self.escalation else {
                "channels": list(self.escalation.channels), "issue_url": self.escalation.issue_url,
                "issue_number": self.escalation.issue_number,
                "failed_channels": list(self.escalation.failed_channels),
                "attempt_branch": self.escalation.attempt_branch},
            "sandbox": self.sandbox,
            "telemetry": self.telemetry,
            "checks": [c.to_dict() for c in self.checks],
            "test_runs": self.test_runs,
            "ignored_config": [{"key": key, "why": why} for key, why in self.ignored_config],
            "review": self.review,
            "validation": self.validation,
            "warnings": self.warnings,
        }

    def write(self, path: Path, redact: Any) -> None:
        """Atomically, and redacted: the report is uploaded as an artifact and read by people. Never into a folder
        someone else planted (a link, or a folder of another user in a shared /tmp)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.lstat(path.parent)
        if stat.S_ISLNK(folder.st_mode) or folder.st_uid not in (os.geteuid(), os.lstat(path.parent.parent).st_uid):
            raise OSError(f"{path.parent} is a link or another user's folder; the report is not written there")
        data = redact.deep(self.to_dict())
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".report-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# Markdown ------------------------------------------------------------------------------------------
_code = code  # every fenced block: no content closes it


def _quoted(text: str | None) -> str:
    """The model's words as a quote: inert, and set apart, so headings or badges in them never pass for ours."""
    if not text:
        return ""
    return "\n".join("> " + line for line in inert(text).splitlines())


def _cell(text: str) -> str:
    """A Markdown table cell: a `|` of the text does not end it."""
    return text.replace("|", "\\|")


def _link_text(text: str) -> str:
    return inert(text).replace("[", "\\[").replace("]", "\\]")


def _url(url: str) -> str:
    """An http(s) URL that cannot end the link early or turn into anything else."""
    if not url.lower().startswith(("https://", "http://")):
        return "#"
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def _trace(report: Report) -> str:
    return f"[`{report.trace_id}`]({report.trace_url})" if report.trace_url else f"`{report.trace_id}`"


def _diagnosis(report: Report) -> list[str]:
    incident = report.incident
    if incident is None:
        return ["_No incident could be read._"]
    lines = [f"**Incident** {inline(incident.id)}" + (f" · {inert(incident.severity)}" if incident.severity else "") +
             (f" · service {inline(incident.service)}" if incident.service else ""),
             "", f"> {inert(incident.summary) or '(no summary)'}".replace("\n", "\n> ")]
    suspects = [*(inline(f) for f in incident.suspect.files), *(inline(f"{f}()") for f in incident.suspect.functions)]
    if incident.suspect.commit:
        suspects.append(f"commit {inline(incident.suspect.commit)}")
    if suspects:
        lines += ["", "Suspects: " + ", ".join(suspects)]
    if incident.links:
        lines += ["", "Links: " + " · ".join(f"[{_link_text(name)}]({_url(url)})" for name, url in incident.links)]
    return lines


def render_changes(report: Report) -> str:
    return "\n".join(["Changes now:", "", *_changes_table(report)])


def _changes_table(report: Report) -> list[str]:
    if not len(report.changes):
        return ["_No change._"]
    rows = ["| file | status | + | - |", "|---|---|---|---|"]
    for change in report.changes:
        added, removed = change.counts()
        rows.append(f"| {_cell(inline(change.path))} | {change.status} | {added} | {removed} |")
    return rows


def _tests(report: Report) -> list[str]:
    run = report.tests
    if run is None:
        return ["_Tests were not run._"]
    lines = [f"**{run.status}**: {run.passed} passed, {run.failed} failed, {run.errors} errors, "
             f"{run.skipped} skipped in {run.duration_s:.1f}s", "",
             "Selected: " + (", ".join(inline(t) for t in run.selected) or "_none_"),
             "", "Command: " + inline(" ".join(p for p in run.command if not p.startswith("--junitxml="))[:200])]
    proof = report.regression
    if proof is not None:
        mark = {"fails_before_passes_after": "✅", "no_new_test": "⚠️", "passes_before": "⚠️",
                "fails_after": "❌", "not_run": "⚠️"}[proof.verdict]
        tests = ", ".join(inline(t) for t in proof.tests)
        lines += ["", f"Regression proof {mark}: {tests + ' ' if tests else ''}{inert(proof.detail)}."]
        if proof.pre_existing_failures:
            lines += ["", "Failing before the fix too (not caused by it): "
                      + ", ".join(inline(n) for n in proof.pre_existing_failures[:10])]
    for failure in run.failures[:10]:
        lines += ["", f"<details><summary>FAILED {inert(failure.name)}</summary>", "", _code(failure.message), "",
                  "</details>"]
    return lines


def _refusals(report: Report) -> list[str]:
    if not report.guardrail_events:
        return ["_None._"]
    rows = ["| tool | asked | rule | detail |", "|---|---|---|---|"]
    for event in report.guardrail_events:
        detail = _cell(inert(event.detail.replace("\n", " ")[:300]))
        asked = _cell(inline((event.arguments or event.target)[:160]))
        rows.append(f"| {_cell(inline(event.tool))} | {asked} | {event.rule} | {detail} |")
    return rows


def _checks(report: Report) -> list[str]:
    """The team's hooks and quality gates, one row a run (empty when none are configured)."""
    if not report.checks:
        return []
    rows = ["", "### Hooks and quality gates", "| kind | event | name | decision | exit | seconds |",
            "|---|---|---|---|---|---|"]
    for run in report.checks[:50]:
        name = inline(run.name) + (" (async)" if run.background else "") + ("" if run.required else " (optional)")
        exit_code = "" if run.exit_code is None else str(run.exit_code)
        rows.append(f"| {run.kind} | {run.event} | {_cell(name)} | {run.decision} | {exit_code} | "
                    f"{run.duration_s:.1f} |")
    if len(report.checks) > 50:
        rows.append(f"\n_{len(report.checks) - 50} more in the JSON report._")
    return rows


def _cost(report: Report) -> str:
    budget = f" of ${report.budget_usd:.2f} budget" if report.budget_usd is not None else ""
    return f"{len(report.llm_calls)} LLM calls to {inline(str(report.model))}, ${report.cost_usd:.4f}{budget}"


def run_lines(report: Report) -> list[str]:
    """Tests, cost and trace: the lines every account of a run ends with."""
    return ["### Tests", *_tests(report), "", f"- {_cost(report)}", f"- Trace ID: {_trace(report)}"]


def render_pr_body(report: Report) -> str:
    parts = ["## Hotfix for incident " + (inline(report.incident.id) if report.incident else ""), "",
             *_diagnosis(report), "", "### Why this change", _quoted(report.agent_summary) or "_No summary given._",
             "",
             "### Changes", *_changes_table(report), "", "<details><summary>Diff</summary>", "",
             _code(report.changes.diff(), "diff"), "", "</details>", "",
             "### Tests", *_tests(report), "", "### Guardrail refusals", *_refusals(report), *_checks(report), "",
             "### Cost and trace", f"- {_cost(report)}", f"- Trace ID: {_trace(report)}", "",
             "_Opened by remediate. Review before merging; nothing was deployed._"]
    return "\n".join(parts)


def validation_table(entry: dict[str, Any]) -> str:
    """One incident's signals after a deployment: at the incident, last, threshold, verdict."""
    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:g}"
    rows = ["| signal | at the incident | last | healthy when | verdict |", "|---|---|---|---|---|"]
    for s in entry["signals"]:
        error = next((x["error"] for x in reversed(s["samples"]) if x.get("error")), None)
        note = f" ({_cell(inert(' '.join(error.split())[:120]))})" if error and s["verdict"] == "unknown" else ""
        rows.append(f"| {_cell(s['name'])} | {number(s['at_incident'])} | {number(s['last'])} | "
                    f"`{s['threshold']}` | {s['verdict']}{note} |")
    return "\n".join(rows)


def _validation_escalation(report: Report) -> str:
    validation = report.validation or {}
    parts = [f"## remediate: the fix did not prove itself in {_cell(str(validation.get('environment')))}: "
             f"`{report.reason}`", "", inert(report.detail or ""), "",
             f"Deployed commit `{str(validation.get('sha'))[:12]}`, watched for {validation.get('window_seconds')}s."]
    for entry in validation.get("incidents", []):
        pr = entry.get("pr")
        where = f" (pull request [#{pr['number']}]({_url(pr['url'])}))" if pr else " (no pull request found)"
        parts += ["", f"### {inline(entry['incident_id'])}: `{entry['verdict']}`{where}", "", validation_table(entry)]
    parts += ["", f"- Trace ID: {_trace(report)}"]
    return "\n".join(parts)


def render_escalation(report: Report) -> str:
    if report.validation and report.validation.get("incidents"):
        return _validation_escalation(report)
    parts = [f"## remediate could not ship a fix: `{report.reason}`", "", inert(report.detail or ""), "",
             "### Diagnosis", *_diagnosis(report), "", "### What was tried",
             _quoted(report.agent_summary) or "_The agent did not summarise its attempt._", "",
             "### Attempted change", *_changes_table(report)]
    if len(report.changes):
        parts += ["", "<details><summary>Attempted diff</summary>", "", _code(report.changes.diff(), "diff"),
                  "", "</details>"]
    if report.attempt_branch:
        parts += ["", f"The attempted change is on branch {inline(report.attempt_branch)} to start from."]
    parts += ["", "### Tests", *_tests(report)]
    if report.tests and report.tests.output_tail and not report.tests.ok:
        parts += ["", "<details><summary>Test output (tail)</summary>", "",
                  _code(report.tests.output_tail[-3000:]), "", "</details>"]
    parts += ["", "### Guardrail refusals", *_refusals(report), *_checks(report), "", "### Cost and trace",
              f"- {_cost(report)}",
              f"- Trace ID: {_trace(report)}"]
    return "\n".join(parts)


ICONS = {"fixed": "✅", "escalated": "⚠️", "error": "❌", "skipped": "⏭️"}  # by outcome, in every account of a run


def render_summary(report: Report, report_path: str) -> str:
    icon = ICONS[report.outcome]
    reason = f"Reason: `{report.reason}` {inert(report.detail)}".strip()
    lines = [f"# {icon} remediate: {report.outcome}", "", reason, ""]
    if report.pr:
        lines.append(f"- Pull request: [#{report.pr.number}]({report.pr.url}) on `{report.pr.branch}`")
    if report.escalation and report.escalation.issue_url:
        lines.append(f"- Escalation issue: {report.escalation.issue_url}")
    lines += [f"- {_cost(report)}", f"- Trace ID: {_trace(report)}", f"- Report: `{report_path}`", "",
              *_diagnosis(report), "", "### Changes", *_changes_table(report), "", "### Tests", *_tests(report),
              "", "### Guardrail refusals", *_refusals(report), *_checks(report)]
    if report.ignored_config:
        lines += ["", "### Configuration loaded but not acted on",
                  *(f"- {inline(key)}: {inert(why)}" for key, why in report.ignored_config)]
    if report.warnings:
        lines += ["", "### Warnings", *(f"- {inert(w.splitlines()[0][:300])}" for w in report.warnings
                                        if not w.startswith("Traceback"))]
    return "\n".join(lines)
