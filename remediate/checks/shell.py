"""One command line of the team's, in the sandbox, on a tree of the base commit with the vetted change."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pathspec

from remediate.guard.sandbox import Sandbox, changes_since, snapshot
from remediate.processes import Finished

# Caches a check leaves behind are not changes (only vetted paths are committed).
CACHES = pathspec.GitIgnoreSpec.from_lines(["__pycache__/", "*.pyc", ".pytest_cache/", ".ruff_cache/", ".mypy_cache/",
                                            ".tox/", ".nox/", "node_modules", ".coverage", "*.egg-info/",
                                            ".eslintcache", ".cache/"])
TAIL_CHARS = 1500


@dataclass(frozen=True)
class ShellRun:
    finished: Finished
    changed: dict[str, str | None]  # files it changed in its copy (None: deleted): proposals, not yet taken
    unreadable: list[str]  # files it made that cannot be taken (binary, links)
    duration_s: float

    def tail(self) -> str:
        text = "\n".join(part for part in (self.finished.output, self.finished.stderr) if part.strip())
        if self.finished.start_error:
            text = f"{self.finished.start_error}\n{text}"
        return text[-TAIL_CHARS:]


def run_in_tree(sandbox: Sandbox, overlay: Mapping[str, str | None], argv: Sequence[str], timeout_s: float,
                env: Mapping[str, str], stdin: bytes | None = None, stderr_apart: bool = False) -> ShellRun:
    """`argv` as the sandbox user in a fresh tree (base commit + `overlay`), bounded by `timeout_s`; the tree is
    discarded, what the command changed in it is returned (tool caches aside)."""
    tree = sandbox.tree(overlay)
    started = time.monotonic()
    try:
        before = snapshot(tree)
        env = {**env, "ARCHITECT_WORKSPACE": str(tree), "REMEDIATE_WORKSPACE": str(tree)}
        done = sandbox.run(argv, tree, timeout_s, extra_env=env, stdin=stdin, stderr_apart=stderr_apart)
        changed, unreadable = changes_since(tree, before, skip=CACHES.match_file)
    finally:
        sandbox.discard(tree)
    return ShellRun(done, changed, unreadable, time.monotonic() - started)


def run_shell(sandbox: Sandbox, overlay: Mapping[str, str | None], command: str, timeout_s: float,
              env: Mapping[str, str], stdin: bytes | None = None) -> ShellRun:
    """A hook's or gate's command line: `sh -c command`, stderr kept apart (a hook's reason)."""
    return run_in_tree(sandbox, overlay, ["/bin/sh", "-c", command], timeout_s, env, stdin, stderr_apart=True)


def passed_through(names: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a hook or gate names in `env:`, from the action's environment: nothing else of ours."""
    return {name: environ[name] for name in names if name in environ}


def bounded(timeout_s: float, deadline: float | None) -> float:
    """A check's own timeout, cut to what the run's wall-time limit leaves (at least a second)."""
    if deadline is None:
        return timeout_s
    return max(1.0, min(timeout_s, deadline - time.monotonic()))

