"""Two-job mode (privilege separation): `command: propose` runs the model and the tests with a read-only token
and writes the vetted change as a proposal; `command: deliver`, in a second job with write permission, reads
it, checks it again against the guardrails of the base branch's own config (never the first job's verdict),
and opens or updates the PR, or escalates.

The proposal is a folder (uploaded and downloaded as an artifact between the jobs) holding `proposal.json`:
the incident id, the base commit, each changed file with the blob id it had at the base and its content
after, the first job's outcome, its report (already redacted) and the trace to continue. Everything in it is
untrusted data to the second job: it is parsed strictly, and a change that does not apply to the base commit
exactly as described is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from remediate.actions import report_location
from remediate.context.pack import build_context
from remediate.errors import UserError
from remediate.gitops import Git, blob_sha
from remediate.guard.changes import Change, ChangeSet
from remediate.guard.guardrails import PathRefused, check_change_set, normalise_repo_path, policy_for
from remediate.records import GuardrailEvent, TestRun
from remediate.report import Report
from remediate.run import Setup

VERSION = 1
FILE = "proposal.json"
MAX_BYTES = 20_000_000


@dataclass(frozen=True)
class Proposal:
    incident_id: str
    base_commit: str
    outcome: str
    reason: str
    detail: str
    changes: tuple[dict[str, Any], ...]  # {path, base_blob (None: new), after (None: deleted), renamed_from}
    agent_summary: str | None
    traceparent: str | None
    report: Mapping[str, Any]


def write(folder: Path, proposal: Proposal) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"version": VERSION, "incident_id": proposal.incident_id, "base_commit": proposal.base_commit,
            "outcome": proposal.outcome, "reason": proposal.reason, "detail": proposal.detail,
            "changes": list(proposal.changes), "agent_summary": proposal.agent_summary,
            "traceparent": proposal.traceparent, "report": proposal.report}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".proposal-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    target = folder / FILE
    os.replace(tmp, target)
    return target


def describe(changes: ChangeSet, git: Git) -> tuple[dict[str, Any], ...]:
    entries = git.tree_entries()
    described = []
    for change in changes:
        source = change.renamed_from or change.path
        described.append({"path": change.path, "renamed_from": change.renamed_from,
                          "base_blob": entries[source][1] if source in entries else None, "after": change.after})
    return tuple(described)


def read(folder: Path) -> Proposal:
    """The proposal a first job wrote, parsed strictly; every problem is a one-line error naming the field."""
    path = folder / FILE if folder.is_dir() else folder
    where = str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"larger than {MAX_BYTES} bytes", field="proposal", source=where)
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the proposal: {exc}", field="proposal", source=where,
                        hint="download the first job's artifact to this path") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise UserError(f"not a version {VERSION} proposal", field="proposal.version", source=where)

    def text(key: str, optional: bool = False) -> Any:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise UserError("expected a string", field=f"proposal.{key}", source=where)
        return value

    changes = data.get("changes")
    if not isinstance(changes, list) or len(changes) > 100:
        raise UserError("expected a list of at most 100 changes", field="proposal.changes", source=where)
    checked = []
    for i, change in enumerate(changes):
        ok = (isinstance(change, dict) and set(change) == {"path", "renamed_from", "base_blob", "after"}
              and isinstance(change["path"], str)
              and all(change[k] is None or isinstance(change[k], str) for k in ("renamed_from", "base_blob", "after")))
        if not ok:
            raise UserError("expected {path, renamed_from, base_blob, after}", field=f"proposal.changes[{i}]",
                            source=where)
        checked.append(dict(change))
    report = data.get("report")
    if not isinstance(report, dict):
        raise UserError("expected an object", field="proposal.report", source=where)
    outcome = text("outcome")
    if outcome not in ("fixed", "escalated", "error"):
        raise UserError("expected fixed, escalated or error", field="proposal.outcome", source=where)
    return Proposal(text("incident_id"), text("base_commit"), outcome, text("reason"), text("detail"),
                    tuple(checked), text("agent_summary", True), text("traceparent", True), report)


def rebuild(proposal: Proposal, git: Git) -> tuple[ChangeSet, list[str]]:
    """The proposed change as a ChangeSet on the base commit, and what does not apply exactly as described
    (a file whose content at the base is not the one the first job started from)."""
    entries = git.tree_entries()
    problems = []
    changes: dict[str, Change] = {}
    for item in proposal.changes:
        source = item["renamed_from"] or item["path"]
        actual = entries.get(source, (None, None))[1]
        if actual != item["base_blob"]:
            problems.append(f"{source}: at the base commit it is {actual or 'absent'}, the proposal started from "
                            f"{item['base_blob'] or 'absent'}")
            continue
        before = git.base_file(source) if actual else None
        if before is not None and blob_sha(before.encode("utf-8")) != actual:
            problems.append(f"{source} is not a UTF-8 text file at the base commit")
            continue
        changes[item["path"]] = Change(item["path"], before, item["after"], item["renamed_from"])
    return ChangeSet(changes), problems


def folder_for(setup: Setup) -> tuple[Path, str]:
    """Where the proposal is: the `proposal` input (relative to the checkout), else beside the report; and the
    path later steps of the job see it at."""
    given = setup.request.inputs.get("proposal")
    if given:
        folder = Path(given) if Path(given).is_absolute() else setup.repo / given
        return folder, str(folder)
    path, shown = report_location(setup.environ, setup.incident.branch_slug)
    return path.parent / "proposal", str(Path(shown).parent / "proposal")


def write_for(setup: Setup, proposal: Proposal) -> Path:
    """Writes the first job's proposal; returns the path later steps see it at."""
    folder, shown = folder_for(setup)
    write(folder, proposal)
    return Path(shown) / FILE


def read_for(setup: Setup) -> Proposal:
    handed = read(folder_for(setup)[0])
    if handed.incident_id != setup.incident.id:
        raise UserError(f"the proposal is for incident {handed.incident_id!r}, this run for {setup.incident.id!r}",
                        field="proposal.incident_id")
    return handed


def on_its_base(setup: Setup, handed: Proposal) -> Setup:
    """The second job's setup, its git based on the commit the proposal was made on (which must be here)."""
    if not (setup.request.github_token and setup.environ.get("GITHUB_REPOSITORY")):
        raise UserError("a GitHub token and GITHUB_REPOSITORY are needed to deliver", field="github-token")
    if setup.git.run("cat-file", "-e", f"{handed.base_commit}^{{commit}}", check=False).returncode != 0:
        raise UserError(f"the base commit {handed.base_commit[:12]} is not in this checkout",
                        field="proposal.base_commit", hint="check out the same ref with enough history")
    return replace(setup, git=replace(setup.git, base=handed.base_commit))


def carry(handed: Proposal, report: Report, setup: Setup) -> None:
    """What the PR and the report show of the first job: its cost, summary and tests, as well-typed data only."""
    first = handed.report
    llm = first.get("llm") if isinstance(first.get("llm"), dict) else {}
    report.model = llm.get("model") if isinstance(llm.get("model"), str) else None
    report.budget_usd = setup.config.costs.budget_usd
    report.llm_calls = [_call(c) for c in llm.get("per_call", []) if isinstance(c, dict)][:500]
    report.agent_summary = setup.redact(handed.agent_summary)[:4000] if handed.agent_summary else None
    if isinstance(first.get("tests"), dict):
        report.tests = TestRun.from_dict(first["tests"])


def _call(data: Mapping[str, Any]) -> dict[str, Any]:
    """One LLM call as the first job's report recorded it, as numbers and names only."""
    def number(key: str) -> float:
        value = data.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else 0

    return {"input_tokens": int(number("input_tokens")), "cached_tokens": int(number("cached_tokens")),
            "output_tokens": int(number("output_tokens")), "cost_usd": float(number("cost_usd")),
            "reserved_usd": float(number("reserved_usd")), "usage_reported": data.get("usage_reported") is True,
            "tool_calls": [n for n in data.get("tool_calls", []) if isinstance(n, str)][:50]
            if isinstance(data.get("tool_calls"), list) else []}


def check(handed: Proposal, setup: Setup) -> tuple[ChangeSet, GuardrailEvent | None]:
    """The change rebuilt on the base commit and judged by this checkout's guardrails: the refusal, if any."""
    for item in handed.changes:
        for raw in (item["path"], item["renamed_from"]):
            try:
                if raw is not None:
                    normalise_repo_path(raw)
            except PathRefused as exc:
                return ChangeSet(), GuardrailEvent("(proposal)", str(raw)[:200], exc.rule, exc.detail)
    changes, problems = rebuild(handed, setup.git)
    if problems:
        return changes, GuardrailEvent("(proposal)", "proposal", "stale_proposal", "; ".join(problems))
    implicated = build_context(setup.incident, read=setup.git.base_file, tracked=setup.git.tracked_files(),
                               commit_text=None, mcp_texts={}, redact=setup.redact, log_budget_tokens=1000)
    policy, _ = policy_for(setup.config, implicated.implicated_files, frozenset(setup.redact.values),
                           setup.git.tracked_files())
    verdict = check_change_set(changes, policy)
    if not verdict.allowed:
        return changes, GuardrailEvent("(proposal)", verdict.target or "proposal", verdict.rule, verdict.detail)
    return changes, None
