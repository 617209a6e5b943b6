"""The one way tests run in a run: the agent's `run_tests`, the final run and the regression proof all go
through `TestRunner`, so selection, environment, limits and redaction are the same for each. Every run is
in the sandbox, on a fresh copy of the checkout with the vetted change (or, for the regression proof, the
code before it) written over it: what is tested is what is delivered, and nothing a test does reaches
the checkout."""

from __future__ import annotations

import ast
import contextvars
import functools
import hashlib
import itertools
import json
import os
import posixpath
import re
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from remediate.guard.changes import ChangeSet
from remediate.guard.guardrails import PathRefused
from remediate.guard.sandbox import Sandbox
from remediate.guard.testfiles import is_test_code
from remediate.guard.workspace import Workspace
from remediate.outcome import Reason, Stop
from remediate.processes import Finished
from remediate.records import RegressionProof, TestRun
from remediate.run import Setup
from remediate.verify.coverage_map import CoverageMap
from remediate.verify.execute import run_tests
from remediate.verify.regression import (
    blamed_failures,
    changed_test_code,
    changed_test_nodes,
    changed_tests,
    in_file,
    judge,
)
from remediate.verify.selection import (
    collected,
    pytest_collects_by_default,
    pytest_testpaths,
    select_with_coverage,
)


@dataclass(frozen=True)
class Verified:
    """The final test run on the change and what the regression proof made of it."""

    run: TestRun
    proof: RegressionProof

    @property
    def blamed(self) -> list[str]:
        return blamed_failures(self.run, self.proof)


def install(setup: Setup, sandbox: Sandbox) -> None:
    """tests.setup, before any money is spent, in the sandbox with pip's target its dependency folder (on every
    later run's PYTHONPATH, read-only once this has run): if the project's test dependencies cannot be
    installed, no test can run, and on-call hears why."""
    config = setup.config.tests
    tree = sandbox.tree()
    sandbox.open_deps()
    try:
        with setup.telemetry.span("test_setup"):
            done = sandbox.run(config.setup, tree, config.timeout_seconds,
                               {"PIP_TARGET": str(sandbox.deps), "PIP_NO_WARN_SCRIPT_LOCATION": "1"})
    finally:
        sandbox.discard(tree)
        sandbox.freeze_deps()
    tail = setup.redact("\n".join(done.output.splitlines()[-30:]))
    if done.timed_out or done.exit_code != 0:
        why = (f"timed out after {config.timeout_seconds:g} s" if done.timed_out
               else done.start_error or f"exit code {done.exit_code}")
        raise Stop(Reason.TEST_SETUP_FAILED, f"tests.setup ({shlex.join(config.setup)}) failed: {why}\n{tail}")


@dataclass
class TestRunner:
    __test__ = False  # not a pytest test class

    setup: Setup
    workspace: Workspace
    sandbox: Sandbox
    warnings: list[str] = field(default_factory=list)
    coverage: CoverageMap | None = None
    _base: tuple[list[str], dict[str, str]] | None = None
    # What ran, and why: one entry a request, reused ones included (the report's `test_runs`).
    runs: list[dict[str, object]] = field(default_factory=list)
    # Results by tree content and tests: a run on a tree already tested is not repeated.
    _done: dict[str, TestRun] = field(default_factory=dict)
    _collect_roots: tuple[tuple[str, ...] | None] | None = None  # pytest's testpaths, read once
    _by_default: bool | None = None  # whether pytest names tests by its default rules, read once

    _started: float = field(default_factory=time.monotonic)  # what `test_runs` times its runs from

    def __post_init__(self) -> None:
        self.coverage = self._load_coverage_map()  # read before the model acts

    def _launch(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float,
                shared: bool = False) -> Finished:
        return self.sandbox.run(argv, cwd, timeout_s, env, shared=shared)

    def for_agent(self, paths: list[str] | None = None) -> TestRun:
        """`run_tests` for the model: when tests fail, it is told which of them fail without its change too (the
        same selection on the code before it), so it can judge whether they belong to this incident. The
        regression proof's run of the new tests on the code before the fix goes beside it, on another core."""
        run = self._with_proof_beside(lambda shared: self.run(paths, purpose="agent", shared=shared))
        if run.ok or not run.failed_tests or not len(self.workspace.changes):
            return run
        failing = _failing_tests(run, self._base_sources()[0])
        before = self._before(self.workspace.changes, failing if failing is not None else list(run.selected),
                              "agent: which failures predate the change", False)
        predating = tuple(n for n in run.failed_tests if before and n in set(before.failed_tests))
        return replace(run, predating=predating)

    def run(self, paths: list[str] | None = None, complete: bool = False, purpose: str = "final",
            shared: bool = False) -> TestRun:
        """The given test paths, or the tests the workspace's change affects (by tests.mode). `shared`: it may
        overlap the regression proof's run."""
        config = self.setup.config.tests
        reason: dict[str, str] = {}
        if paths is None and config.mode == "auto":
            tracked, base = self._base_sources()
            sources = dict(base)
            for change in self.workspace.changes:
                if change.path.endswith(".py"):
                    if change.after is None:
                        sources.pop(change.path, None)
                    else:
                        sources[change.path] = change.after
            selection = select_with_coverage(self.coverage, base, sources, self.workspace.changes.files_touched,
                                             config.map, tracked, nodes=self._by_node())
            paths, reason = list(selection.tests), dict(selection.reason)
            if is_pytest(config.command):
                # The fix's own tests and what tests.map names run wherever they are.
                kept = [p for p in paths if reason.get(p, "") == "changed" or reason.get(p, "").startswith("tests.map")]
                paths, outside = collected(paths, self._testpaths())
                paths += [p for p in kept if p not in paths]
                outside = [p for p in outside if p not in kept]
                for path in outside:
                    reason.pop(path, None)
                if outside:
                    reason["(not collected)"] = (f"left out, outside pytest's testpaths: {', '.join(outside[:5])}"
                                                 + (f" and {len(outside) - 5} more" if len(outside) > 5 else ""))
            if not paths and config.when_none_selected == "escalate":
                return TestRun(tuple(config.command), (), "no_tests",
                               output_tail="no test exercises the change (tests.when_none_selected: escalate)")
            if not paths:
                reason = {"(whole suite)": "no test exercises the change (tests.when_none_selected: run_all)"}
        elif paths is None:
            paths, reason = [], {"(whole suite)" if config.mode == "all" else "(command)": f"tests.mode: {config.mode}"}
        return self._on_copy(self.workspace.overlay(), paths, reason, complete, purpose, shared=shared)

    def verify(self) -> Verified:
        """The final run on the change, then the regression proof: the new tests and the selection on the code
        before the fix, when a new test needs proving or a failure needs a baseline."""
        changes: ChangeSet = self.workspace.changes
        run = self._with_proof_beside(lambda shared: self.run(purpose="final", shared=shared))
        new_tests = changed_tests(changes)
        before = None
        if new_tests or not run.ok:
            with self.setup.telemetry.span("regression_proof"):
                before = self._baseline(changes, run, new_tests)
        verified = Verified(run, judge(new_tests, before, run))
        if not run.ok and not run.complete and not verified.blamed:
            # Stopped early on failures that all predate the fix: the tests not yet run decide, and the failures
            # only they reach get their own baseline.
            run = self.run(complete=True, purpose="complete: the failures seen all predate the fix")
            with self.setup.telemetry.span("regression_proof"):
                before = self._baseline(changes, run, new_tests)
            verified = Verified(run, judge(new_tests, before, run))
        return verified

    def _baseline(self, changes: ChangeSet, run: TestRun, new_tests: tuple[str, ...]) -> TestRun | None:
        """What the proof needs on the code before the fix, and nothing more: the tests the fix adds or changes
        (with the test code they need), where they must fail; and, apart, the files of the tests that fail after
        the fix on the plain code before it, without any of the change's test code (so a new test cannot make
        an old one fail there and pass a regression off as pre-existing). The two in one result."""
        proof = self._before(changes, self._proven(changes), PROOF, True) if new_tests else None
        if run.ok:
            return proof
        failing = _failing_tests(run, self._base_sources()[0])
        base = self._before(changes, [] if failing is None else failing,  # []: the whole suite
                            "baseline: the failing tests on the code before the fix", False)
        return _merged(proof, base, new_tests)

    def _proven(self, changes: ChangeSet) -> list[str]:
        """What the proof runs on the code before the fix: the tests the fix adds or changes."""
        return list(changed_test_nodes(changes)) if is_pytest(self.setup.config.tests.command) \
            else list(changed_tests(changes))

    def _with_proof_beside(self, run: Callable[[bool], TestRun]) -> TestRun:
        """`run(shared)`, with the proof's run before the fix started beside it (they need each other's results
        only at the end): when the change fixes code and adds tests, the proof has not run on this test code
        yet, and there is a core to spare. An error of the proof's run is raised once `run` is done."""
        changes = self.workspace.changes
        plan = None
        if changed_tests(changes) and not all(is_test_code(c.path) for c in changes) and _cores() >= 2:
            plan = self._before_plan(changes, self._proven(changes), True)
        if plan is None or {_key(*plan, False), _key(*plan, False) + ":complete"} & self._done.keys():
            return run(False)

        def proof() -> None:
            with self.setup.telemetry.span("regression_proof"):
                self._on_copy(*plan, {}, True, PROOF, tracebacks=False, shared=True)
        beside = _Beside(proof)
        try:
            result = run(True)
        finally:
            beside.join()
        beside.reraise()
        return result

    def _before(self, changes: ChangeSet, selected: list[str], purpose: str, with_test_code: bool) -> TestRun | None:
        """The given tests on the code before the fix (with the fix's test code carried over, or not). None when
        none of them exists there."""
        plan = self._before_plan(changes, selected, with_test_code)
        if plan is None:
            return None
        # Which tests fail is all the code before the fix has to tell: no tracebacks (pytest takes longer to write
        # the tracebacks of a failing test than to run it).
        return self._on_copy(*plan, {}, True, purpose, tracebacks=False)  # no selection: the whole suite

    def _before_plan(self, changes: ChangeSet, selected: list[str],
                     with_test_code: bool) -> tuple[dict[str, str | None], list[str]] | None:
        """The tree before the fix (as an overlay of the base commit) and the given tests that exist in it."""
        overlay = self.workspace.overlay(before=True)
        if with_test_code:
            overlay.update({path: changes.changes[path].after for path in changed_test_code(changes)})
        # Files, or single tests by node id (tests/x.py::test_y) whose file exists before the fix.
        present = [p for p in selected if self._exists(p.split("::", 1)[0], overlay)]
        if selected and not present:
            return None
        return overlay, present

    def _exists(self, path: str, overlay: Mapping[str, str | None]) -> bool:
        if path in overlay:
            return overlay[path] is not None
        tracked = self._base_sources()[0]
        folder = path.rstrip("/") + "/"
        return path in tracked or any(f.startswith(folder) for f in tracked)

    def _on_copy(self, overlay: dict[str, str | None], paths: list[str], reason: dict[str, str],
                 complete: bool, purpose: str, tracebacks: bool = True, shared: bool = False) -> TestRun:
        key = _key(overlay, paths, tracebacks)
        started = time.monotonic()
        done = self._done.get(key + ":complete") or (None if complete else self._done.get(key))
        if done is not None:
            self._log(purpose, done, started, reused=True)
            return replace(done, selection_reason=reason or done.selection_reason)
        tree = self.sandbox.tree(overlay)
        try:
            run = self.execute(tree, paths, reason, complete, tracebacks, shared)
        finally:
            self.sandbox.discard(tree)
        self._done[key + (":complete" if run.complete else "")] = run
        self._log(purpose, run, time.monotonic() - run.duration_s, reused=False)
        return run

    def _log(self, purpose: str, run: TestRun, started: float, reused: bool) -> None:
        self.runs.append({"purpose": purpose, "tests": list(run.selected), "status": run.status,
                          "passed": run.passed, "failed": run.failed + run.errors,
                          "started_s": round(max(0.0, started - self._started), 3),
                          "duration_s": 0.0 if reused else round(run.duration_s, 3), "reused": reused})

    def execute(self, root: Path, paths: list[str], reason: dict[str, str], complete: bool = False,
                tracebacks: bool = True, shared: bool = False) -> TestRun:
        config = self.setup.config.tests
        junit_dir = self.sandbox.scratch()
        try:
            with self.setup.telemetry.span("test_run", {"remediate.tests.selected": len(paths)}) as span:
                run = run_tests(root, config.command, paths, env={}, timeout_s=config.timeout_seconds,
                                reason=reason, junit_glob=config.junit_glob,
                                max_failures=0 if complete else config.max_failures,
                                launch=functools.partial(self._launch, shared=shared), junit_dir=junit_dir,
                                tracebacks=tracebacks)
                span.set_attribute("remediate.tests.status", run.status)
        finally:
            self.sandbox.discard(junit_dir)
        run = _unreached(root, paths, run)
        return replace(run, output_tail=self.setup.redact(run.output_tail))

    def _load_coverage_map(self) -> CoverageMap | None:
        """tests.coverage_map; an unreadable map is a warning, and the import graph decides."""
        path_text = self.setup.config.tests.coverage_map
        if not path_text:
            return None
        path = Path(path_text) if Path(path_text).is_absolute() else self.setup.repo / path_text
        try:
            return CoverageMap.load(path)
        except (OSError, ValueError) as exc:
            self.warnings.append(f"tests.coverage_map {path_text}: {exc}; selecting by imports only")
            return None

    def _by_node(self) -> bool:
        """Whether selection may name single tests: pytest, collecting by its default rules."""
        if self._by_default is None:
            self._by_default = is_pytest(self.setup.config.tests.command) and \
                pytest_collects_by_default(self.setup.git.base_file)
        return self._by_default

    def _testpaths(self) -> tuple[str, ...] | None:
        if self._collect_roots is None:
            self._collect_roots = (pytest_testpaths(self.setup.git.base_file),)
        return self._collect_roots[0]

    def _base_sources(self) -> tuple[list[str], dict[str, str]]:
        """Tracked files and their Python sources before the run: read once, they do not change."""
        if self._base is None:
            tracked = self.setup.git.tracked_files()
            base = {}
            for path in tracked:
                if path.endswith(".py"):
                    with suppress(PathRefused, OSError):
                        base[path] = self.workspace.original(path) or ""
            self._base = (tracked, base)
        return self._base


def is_pytest(command: Sequence[str]) -> bool:
    """Whether the test command runs pytest (`python -m pytest ...`, `pytest ...`)."""
    return bool(command) and (posixpath.basename(command[0]) == "pytest" or any(
        a == "-m" and b == "pytest" for a, b in itertools.pairwise(command)))


def _key(overlay: Mapping[str, str | None], paths: Sequence[str], tracebacks: bool = True) -> str:
    """The tree (the base commit with this overlay), the tests asked for and how, as one digest."""
    digest = hashlib.sha256(json.dumps([sorted(overlay.items(), key=lambda item: item[0]), list(paths),
                                        tracebacks]).encode())
    return digest.hexdigest()


PROOF = "regression proof: the new tests, before the fix"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Beside:
    """Work on a thread of its own, in the caller's telemetry context (its spans stay in the run's trace); its
    error is raised where it is joined."""

    def __init__(self, work: Callable[[], object]) -> None:
        self._error: BaseException | None = None
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=self._go, args=(context, work), name="remediate-proof", daemon=True)
        self._thread.start()

    def _go(self, context: contextvars.Context, work: Callable[[], object]) -> None:
        try:
            context.run(work)
        except BaseException as exc:  # re-raised on the caller's thread
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def reraise(self) -> None:
        if self._error is not None:
            raise self._error


MAX_BASELINE_NODES = 100  # more failing tests than this run by file on the code before the fix


def _failing_tests(run: TestRun, tracked: Sequence[str] = ()) -> list[str] | None:
    """Where the failures of `run` are, to run them on the code before the fix: as pytest node ids
    (`tests/test_x.py::TestY::test_z`, every parametrization), or their files when there are many or the
    runner is not pytest; among the selected files, or, after a whole-suite run, among the tracked ones. None
    when a failure is in no file we can name (the whole suite then runs before the fix, as after it)."""
    files = list(dict.fromkeys(p.split("::", 1)[0] for p in run.selected)) or [p for p in tracked if p.endswith(".py")]
    # The most specific file: tests.test_a.test_b::x is tests/test_a/test_b.py, not tests/test_a.py.
    found = {name: max((path for path in files if in_file(name, path)), key=len, default=None)
             for name in run.failed_tests}
    if any(path is None for path in found.values()):
        return None
    nodes = [_node_id(name, path) for name, path in found.items() if path is not None]
    if not is_pytest(run.command) or len(set(nodes)) > MAX_BASELINE_NODES:
        return list(dict.fromkeys(path for path in found.values() if path is not None))
    return list(dict.fromkeys(nodes))


def _node_id(name: str, path: str) -> str:
    """JUnit's `tests.test_x.TestY::test_z[1]` as pytest's `tests/test_x.py::TestY::test_z`; the file when the
    name is the module's own (it failed to import)."""
    # Every parametrization: its id need not survive a command line.
    rest = name[len(path.removesuffix(".py").replace("/", ".")):].split("[", 1)[0]
    parts = rest.replace("::", ".").split(".")
    if not rest.startswith(("::", ".")) or not all(p.isidentifier() for p in parts[1:]):
        return path
    return "::".join([path, *parts[1:]])


def _merged(proof: TestRun | None, base: TestRun | None, new_tests: tuple[str, ...]) -> TestRun | None:
    """The proof's run and the baseline's as one `before`: failures in the new tests' files from the proof only
    (the baseline has the old version of a changed test file, if any), every other failure from the baseline
    only (a new test may name its result after an old one: from the proof, that name does not count)."""
    def new(name: str) -> bool:
        return any(in_file(name, t) for t in new_tests)

    if proof is None and base is None:
        return None
    ours = [f for f in (proof.failures if proof else ()) if new(f.name)]
    ours_names = [n for n in (proof.failed_tests if proof else ()) if new(n)]
    theirs = [f for f in (base.failures if base else ()) if not new(f.name)]
    theirs_names = [n for n in (base.failed_tests if base else ()) if not new(n)]
    first = proof or base
    assert first is not None
    failed = len(ours_names) + len(theirs_names)
    return replace(first, selected=tuple(dict.fromkeys([*(proof.selected if proof else ()),
                                                         *(base.selected if base else ())])),
                   failures=(*ours, *theirs), failed_tests=(*ours_names, *theirs_names), failed=failed, errors=0,
                   passed=(proof.passed if proof else 0) + (base.passed if base else 0),
                   status="failed" if failed else first.status)


_EXIT_BANNER = re.compile(r"^!{5,} _pytest\.outcomes\.Exit\b", re.M)


def _unreached(root: Path, paths: Sequence[str], run: TestRun) -> TestRun:
    """A pass only counts when the run got to every test file asked for: a test that ends pytest early with
    status 0 (`pytest.exit(returncode=0)`) leaves a report of the tests before it, and the rest never ran."""
    if run.status != "passed" or not run.complete:
        return run
    missing = []
    if paths:
        for path in dict.fromkeys(p.split("::", 1)[0] for p in paths):
            if path.endswith(".py") and _defines_tests(root / path) and \
                    not any(in_file(f"{module}::x", path) for module in run.reported):
                missing.append(path)
    exited = bool(_EXIT_BANNER.search(run.output_tail))
    if not missing and not exited:
        return run
    why = "pytest was ended early (pytest.exit)" if exited else f"no result for {', '.join(missing[:5])}"
    return replace(run, status="error", output_tail=f"the run did not reach every test: {why}\n{run.output_tail}")


def _defines_tests(path: Path) -> bool:
    """Whether a test file defines tests pytest would collect (a module of helpers named test_x.py does not)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return False
    return any((isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test"))
               or (isinstance(n, ast.ClassDef) and n.name.startswith("Test")) for n in tree.body)

