"""The cumulative change a run proposes: per file, the content before the run and after. Pure values."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Change:
    path: str
    before: str | None  # None: the file did not exist before the run
    after: str | None  # None: the change deletes the file
    renamed_from: str | None = None

    @property
    def status(self) -> str:
        if self.renamed_from:
            return "renamed"
        if self.before is None:
            return "added"
        if self.after is None:
            return "deleted"
        return "modified"

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, self.renamed_from) if self.renamed_from else (self.path,)

    def diff(self) -> str:
        before = (self.before or "").splitlines(keepends=True)
        after = (self.after or "").splitlines(keepends=True)
        src = "/dev/null" if self.before is None else f"a/{self.renamed_from or self.path}"
        dst = "/dev/null" if self.after is None else f"b/{self.path}"
        lines = list(difflib.unified_diff(before, after, src, dst, n=3))
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)

    def counts(self) -> tuple[int, int]:
        additions = deletions = 0
        for line in self.diff().splitlines():
            if line.startswith("+") and not line.startswith("+++"):
                additions += 1
            elif line.startswith("-") and not line.startswith("---"):
                deletions += 1
        return additions, deletions

    def to_dict(self) -> dict[str, Any]:
        additions, deletions = self.counts()
        return {"path": self.path, "status": self.status, "additions": additions, "deletions": deletions,
                **({"renamed_from": self.renamed_from} if self.renamed_from else {})}


@dataclass(frozen=True)
class ChangeSet:
    changes: Mapping[str, Change] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes[p] for p in sorted(self.changes))

    def __len__(self) -> int:
        return len(self.changes)

    def current(self, path: str, on_disk: str | None) -> str | None:
        """The content of `path` with this change applied, given its content before the run."""
        if path in self.changes:
            return self.changes[path].after
        for change in self.changes.values():
            if change.renamed_from == path:
                return None
        return on_disk

    def with_content(self, path: str, before: str | None, after: str | None) -> ChangeSet:
        """A new set where `path` ends as `after`; a file edited back to its original drops out."""
        merged = dict(self.changes)
        original = merged[path].before if path in merged else before
        if original == after:
            merged.pop(path, None)
        else:
            merged[path] = Change(path, original, after)
        return ChangeSet(merged)

    def with_rename(self, source: str, target: str, before: str | None, after: str) -> ChangeSet:
        merged = dict(self.changes)
        merged.pop(source, None)
        merged[target] = Change(target, before, after, renamed_from=source)
        return ChangeSet(merged)

    @property
    def files_touched(self) -> frozenset[str]:
        return frozenset(p for c in self.changes.values() for p in c.paths)

    @property
    def lines_changed(self) -> int:
        return sum(sum(c.counts()) for c in self.changes.values())

    def diff(self) -> str:
        return "".join(c.diff() for c in self)
