"""Guardrail verdicts on proposed changes. Pure: values in, a Verdict out; no filesystem, no globals."""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from dataclasses import dataclass, field

import pathspec

from remediate.config import GuardrailsConfig, TestsConfig
from remediate.guard.changes import ChangeSet
from remediate.guard.testfiles import TEST_CODE_GLOBS
from remediate.secrets import contains_secret

# Never writable, whatever the config says: git internals, CI definitions (a workflow edit with a
# write token is privilege escalation), and our own guardrail configuration.
NEVER_WRITABLE = pathspec.GitIgnoreSpec.from_lines([
    # At any depth: a .gitattributes in a subfolder sets filters and hides diffs, a file named .git is a gitdir
    # pointer, a nested .gitmodules adds submodules.
    ".git", ".git/", ".gitmodules", ".gitattributes", "/.github/",
    "/.remediate.yaml", "/.remediate.yml", "/.architect.yaml", "/.architect.yml",
    "/.remediate/",  # the action's own data, such as the coverage map that decides which tests run
])

# The test runner's configuration decides the verdict, so the change being judged cannot change it: every
# test run uses these files as the base commit has them (docs/safety.md, "An honest verdict").
TEST_RUNNER_CONFIG = pathspec.GitIgnoreSpec.from_lines([
    # At any depth: pytest takes the nearest of these above the tests it runs, in a subfolder too.
    "conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini", "setup.cfg",
    "pyproject.toml", "sitecustomize.py", "usercustomize.py", "*.pth",
])



@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str = ""
    detail: str = ""
    target: str = ""

    @classmethod
    def allow(cls) -> Verdict:
        return cls(True)

    @classmethod
    def refuse(cls, rule: str, detail: str, target: str = "") -> Verdict:
        return cls(False, rule, detail, target)


class PathRefused(ValueError):
    """A path or command the guardrails refuse: an observation for the model, never the end of a run."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class WritePolicy:
    protected: tuple[str, ...] = ()
    max_files_modified: int = 3
    max_lines_changed: int = 200
    # None: the whole repository is in scope (protected paths still are not).
    scope_files: frozenset[str] | None = None
    scope_globs: tuple[str, ...] = TEST_CODE_GLOBS
    # The run's known secrets: the redactor's live set, so values learned later count too.
    secret_values: Collection[str] = frozenset()
    _protected_spec: pathspec.PathSpec = field(init=False, repr=False, compare=False)
    _scope_spec: pathspec.PathSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_protected_spec", pathspec.GitIgnoreSpec.from_lines(self.protected))
        object.__setattr__(self, "_scope_spec", pathspec.GitIgnoreSpec.from_lines(self.scope_globs))

    def is_protected(self, path: str) -> bool:
        return self._protected_spec.match_file(path)

    def in_scope(self, path: str) -> bool:
        if self.scope_files is None:
            return True
        return path in self.scope_files or self._scope_spec.match_file(path)


def normalise_repo_path(raw: object) -> str:
    """A clean, relative POSIX path inside the repository, or PathRefused."""
    if not isinstance(raw, str) or not raw.strip():
        raise PathRefused("path_invalid", "path must be a non-empty string")
    if "\x00" in raw or any(ord(c) < 32 for c in raw):
        raise PathRefused("path_invalid", "path contains control characters")
    path = raw.strip().replace("\\", "/")
    if path.startswith("-"):
        raise PathRefused("path_invalid", f"{raw!r} is an option, not a path")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise PathRefused("path_outside_repo",
                          f"absolute path {raw!r} is not allowed; use a path relative to the repository root")
    if any(part == ".." for part in path.split("/")):
        raise PathRefused("path_outside_repo", f"{raw!r} climbs out with '..'")
    path = posixpath.normpath(path)
    if path in (".", ""):
        raise PathRefused("path_invalid", "path names the repository root, not a file")
    return path


def check_path(path: str, policy: WritePolicy) -> Verdict:
    if NEVER_WRITABLE.match_file(path) or NEVER_WRITABLE.match_file(path.lower()):
        return Verdict.refuse("never_writable", f"{path} is never writable (git internals, CI workflows and "
                              "the remediate configuration cannot be changed by the agent)", path)
    if TEST_RUNNER_CONFIG.match_file(path):
        return Verdict.refuse("test_config", f"{path} configures the test runner that judges the change; it is "
                              "taken from the base commit and cannot be changed by the agent", path)
    if policy.is_protected(path):
        return Verdict.refuse("protected_file", f"{path} matches protected_files", path)
    if not policy.in_scope(path):
        return Verdict.refuse("out_of_scope", f"{path} is outside the edit scope: only the files the diagnosis "
                              "implicates and test files may change", path)
    return Verdict.allow()


def check_change_set(changes: ChangeSet, policy: WritePolicy) -> Verdict:
    """The verdict on the whole cumulative change, computed before anything is written."""
    for change in changes:
        if change.after is not None and "\x00" in change.after:
            return Verdict.refuse("binary_content", f"{change.path}: binary content is not allowed", change.path)
        added = "\n".join(line[1:] for line in change.diff().splitlines()
                          if line.startswith("+") and not line.startswith("+++"))
        if contains_secret(added, policy.secret_values):
            return Verdict.refuse("secret_in_change", f"{change.path}: the added lines contain a credential; "
                                  "secrets never go into a commit", change.path)
        for path in change.paths:
            verdict = check_path(path, policy)
            if not verdict.allowed:
                return verdict
    files = changes.files_touched
    if len(files) > policy.max_files_modified:
        return Verdict.refuse("max_files_modified", f"the change would touch {len(files)} files "
                              f"({', '.join(sorted(files))}); the limit is {policy.max_files_modified}")
    lines = changes.lines_changed
    if lines > policy.max_lines_changed:
        return Verdict.refuse("max_lines_changed", f"the change would add or remove {lines} lines; "
                              f"the limit is {policy.max_lines_changed}")
    return Verdict.allow()


def policy_for(guardrails: GuardrailsConfig, tests: TestsConfig, implicated: frozenset[str],
               secret_values: Collection[str]) -> tuple[WritePolicy, str | None]:
    """The run's write policy from the config and the files the diagnosis implicates, and a warning when
    the suspects scope has nothing to hold on to."""
    scope: frozenset[str] | None = None
    warning = None
    if guardrails.edit_scope == "suspects":
        if implicated:
            scope = implicated
        else:
            warning = "the diagnosis names no file found in the repository: the edit scope is the whole repository"
    protected = list(guardrails.protected_files)
    if tests.coverage_map:  # it decides which tests judge the fix: never the model's to edit
        protected.append("/" + tests.coverage_map.lstrip("/"))
    policy = WritePolicy(tuple(protected), guardrails.max_files_modified, guardrails.max_lines_changed, scope,
                         (*TEST_CODE_GLOBS, *guardrails.extra_scope), secret_values)
    return policy, warning
