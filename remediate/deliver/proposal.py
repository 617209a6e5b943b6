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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remediate.errors import UserError
from remediate.gitops import Git, blob_sha
from remediate.guard.changes import Change, ChangeSet

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
