"""The repository as the agent sees it: reads, and writes that only happen after an allowing verdict."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from remediate.guard.changes import ChangeSet
from remediate.guard.guardrails import (
    PathRefused,
    Verdict,
    WritePolicy,
    check_change_set,
    check_path,
    normalise_repo_path,
)
from remediate.records import GuardrailEvent

MAX_FILE_BYTES = 2_000_000


class PatchError(ValueError):
    """The patch does not parse or does not apply; the model gets the message."""


@dataclass
class Workspace:
    root: Path
    policy: WritePolicy
    changes: ChangeSet = field(default_factory=ChangeSet)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()

    def resolve(self, raw: object) -> str:
        """Normalise a path and refuse any symlink on the way (existing links may lead anywhere)."""
        path = normalise_repo_path(raw)
        current = self.root
        for part in path.split("/"):
            current = current / part
            if current.is_symlink():
                raise PathRefused("symlink", f"{path} goes through the symlink {current.relative_to(self.root)}")
        if not str(current.resolve()).startswith(str(self.root) + os.sep):
            raise PathRefused("path_outside_repo", f"{path} resolves outside the repository")
        return path

    def writable(self, raw: object) -> str:
        """Resolve a write target and refuse it before anything else is said about it."""
        path = self.resolve(raw)
        verdict = check_path(path, self.policy)
        if not verdict.allowed:
            raise PathRefused(verdict.rule, verdict.detail, path)
        return path

    def original(self, path: str) -> str | None:
        """The file as it was before the run (None if it did not exist)."""
        target = self.root / path
        if path in self.changes.changes:
            return self.changes.changes[path].before
        if not target.is_file():
            return None
        if target.stat().st_size > MAX_FILE_BYTES:
            raise PathRefused("file_too_large", f"{path} is larger than {MAX_FILE_BYTES} bytes")
        data = target.read_bytes()
        if b"\x00" in data:
            raise PathRefused("binary_content", f"{path} is a binary file")
        return data.decode("utf-8", errors="replace")

    def read(self, raw: object) -> str | None:
        path = self.resolve(raw)
        return self.changes.current(path, self._on_disk(path))

    def disk(self, path: str) -> str | None:
        return self._on_disk(path)

    def adopt(self, external: dict[str, str | None]) -> Verdict:
        """Files a command changed in its sandbox copy (path -> content, None: deleted): judged like any write, and
        written here only when the verdict allows the whole of it."""
        if not external:
            return Verdict.allow()
        proposed = self.changes
        for raw, now in sorted(external.items()):
            path = self.resolve(raw)
            proposed = proposed.with_content(path, self.original(path), now)
        return self.propose(proposed)

    def drift(self, differing: list[str], known: Mapping[str, object]) -> GuardrailEvent | None:
        """The event for checkout files that differ from the base plus the vetted change (`differing`), those
        already dirty when the run began (`known`) aside. Delivery ships the vetted bytes whatever the disk
        holds; that the disk changed behind our back is worth a look."""
        tampered = [path for path in differing if path not in known]
        if not tampered:
            return None
        return GuardrailEvent("(workspace)", ", ".join(tampered[:5]), "workspace_differs",
                              f"{len(tampered)} file(s) in the checkout differ from the base commit plus the vetted "
                              f"change: {', '.join(tampered[:10])}; the commit is built from the vetted change, not "
                              "from the disk")

    def restore(self) -> None:
        """Put the checkout's files back as they were before the run: once the change is committed, it lives on its
        branch. The change itself is kept, for the report."""
        for path, content in self.overlay(before=True).items():
            target = self.root / path
            if content is None:
                if target.is_file() and not target.is_symlink():
                    target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8", newline="")

    def overlay(self, before: bool = False) -> dict[str, str | None]:
        """The change as files to write over a copy of the checkout: its vetted content, or with `before` the
        content before the run (None: the file does not exist)."""
        files: dict[str, str | None] = {}
        for change in self.changes:
            if before:
                files[change.path] = None if change.renamed_from else change.before
                if change.renamed_from:
                    files[change.renamed_from] = change.before
            else:
                files[change.path] = change.after
                if change.renamed_from:
                    files[change.renamed_from] = None
        return files

    def _on_disk(self, path: str) -> str | None:
        target = self.root / path
        if not target.is_file():
            return None
        return target.read_bytes().decode("utf-8", errors="replace")

    # Every write tool ends here: the proposed cumulative change, one verdict, then the write.
    def propose(self, proposed: ChangeSet) -> Verdict:
        verdict = check_change_set(proposed, self.policy)
        if verdict.allowed:
            self._write(proposed)
            self.changes = proposed
        return verdict

    def propose_content(self, raw_path: object, content: str | None) -> Verdict:
        path = self.resolve(raw_path)
        return self.propose(self.changes.with_content(path, self.original(path), content))

    def propose_patch(self, patch_text: str) -> Verdict:
        proposed = self.changes
        try:
            parsed = self._parse_patch(patch_text)
        except PathRefused as exc:
            if not exc.path:  # not a path the policy refuses (a symlink, a path outside): a mistake, as before
                raise
            return Verdict.refuse(exc.rule, exc.detail, exc.path)
        for source, target, new_content in parsed:
            if source and target and source != target:
                proposed = proposed.with_rename(source, target, self.original(source), new_content or "")
            else:
                path = target or source
                assert path is not None
                proposed = proposed.with_content(path, self.original(path), new_content)
        return self.propose(proposed)

    def patch_paths(self, patch_text: str) -> list[str]:
        """The paths a patch names, resolved (those that do not resolve left out: the patch is refused anyway)."""
        try:
            patch = PatchSet.from_string(patch_text)
        except UnidiffParseError:
            return []
        paths: list[str] = []
        for patched in patch:
            for name in (patched.source_file, patched.target_file):
                if name and name != "/dev/null":
                    try:
                        paths.append(self.resolve(_strip_prefix(name)))
                    except PathRefused:
                        continue
        return list(dict.fromkeys(paths))

    def _parse_patch(self, patch_text: str) -> list[tuple[str | None, str | None, str | None]]:
        try:
            patch = PatchSet.from_string(patch_text)
        except UnidiffParseError as exc:
            raise PatchError(f"the patch does not parse: {exc}") from None
        if not len(patch):
            raise PatchError("the patch contains no file changes")
        _check_counts(patch_text, patch)
        results: list[tuple[str | None, str | None, str | None]] = []
        for patched in patch:
            if patched.is_binary_file:
                raise PatchError("binary patches are not allowed")
            if "120000" in str(patched.patch_info or ""):
                raise PathRefused("symlink", "patches that create symlinks are not allowed")
            # Judged before anything is read: whether a hunk's context is found must say nothing about a file the
            # model may not write (a protected or sensitive one).
            target = None if patched.is_removed_file else self.writable(_strip_prefix(patched.target_file))
            source = None if patched.is_added_file else self.writable(_strip_prefix(patched.source_file))
            if patched.is_removed_file:
                results.append((source, None, None))
                continue
            current = "" if source is None else self.changes.current(source, self._on_disk(source))
            if current is None:
                raise PatchError(f"{source} does not exist")
            results.append((source, target, _apply_hunks(current, patched, target or "")))
        return results

    def _write(self, proposed: ChangeSet) -> None:
        """Write the whole change or nothing: stage every file first, then rename into place."""
        staged: list[tuple[Path, Path]] = []
        removals: list[Path] = []
        previous_paths = self.changes.files_touched
        wanted = {c.path: c.after for c in proposed}
        for change in proposed:
            if change.renamed_from:
                removals.append(self.root / change.renamed_from)
        for path in previous_paths - set(wanted):
            original = self.changes.changes[path].before if path in self.changes.changes else None
            wanted[path] = original  # an earlier change the new set drops: restore the original
        try:
            for path, content in wanted.items():
                target = self.root / path
                if content is None:
                    removals.append(target)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".remediate-")
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                    handle.write(content)
                if target.exists():
                    os.chmod(tmp, target.stat().st_mode & 0o777)
                else:
                    os.chmod(tmp, 0o644)
                staged.append((Path(tmp), target))
        except OSError:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        for tmp, target in staged:
            os.replace(tmp, target)
        for target in removals:
            if target.is_file() and not target.is_symlink():
                target.unlink()


def _check_counts(patch_text: str, patch: PatchSet) -> None:
    """unidiff trusts the @@ counts and drops body lines beyond them; a patch that says less than it
    shows must not apply as if it were whole."""
    body = [line for line in patch_text.splitlines() if not line.startswith(("+++", "---"))]
    shown = sum(1 for line in body if line.startswith(("+", "-")))
    parsed = sum(1 for patched in patch for hunk in patched for line in hunk if line.is_added or line.is_removed)
    if shown != parsed:
        raise PatchError(f"the @@ line counts do not match the hunk bodies ({shown} added/removed lines shown, "
                         f"{parsed} covered by the headers); fix the counts or use edit_file")


def _strip_prefix(name: str) -> str:
    return name[2:] if name.startswith(("a/", "b/")) else name


def _apply_hunks(content: str, patched: object, label: str) -> str:
    lines = content.splitlines(keepends=True)
    offset = 0
    for hunk in patched:  # type: ignore[attr-defined]
        source = [line.value for line in hunk if line.is_context or line.is_removed]
        target = [line.value for line in hunk if line.is_context or line.is_added]
        start = max(hunk.source_start - 1, 0) + offset
        if lines[start:start + len(source)] != source:
            matches = [i for i in range(len(lines) - len(source) + 1) if lines[i:i + len(source)] == source]
            if len(matches) != 1:
                what = "not found" if not matches else f"found {len(matches)} times"
                raise PatchError(f"hunk @@ -{hunk.source_start},{hunk.source_length} @@ of {label} does not "
                                 f"apply: its context is {what}; read the file again and resend the patch")
            start = matches[0]
        lines[start:start + len(source)] = target
        offset += len(target) - len(source)
    return "".join(lines)
