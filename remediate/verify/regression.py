"""Proof that the fix fixes: the tests the fix adds or changes fail on the code before the fix and
pass after; and a baseline of the selected tests before the fix, so a failure that was already
there is reported as such instead of being blamed on the fix.

Pure: the runs themselves are verify/runner.py's (the code before the fix is a sandbox copy with the
change taken back out and the fix's test code put in)."""

from __future__ import annotations

from remediate.guard.changes import ChangeSet
from remediate.guard.testfiles import is_test_code, is_test_module
from remediate.records import RegressionProof, TestRun
from remediate.verify.test_items import changed_test_items


def changed_tests(changes: ChangeSet) -> tuple[str, ...]:
    """The test modules the fix adds or changes: the tests whose verdict before the fix proves it."""
    return tuple(c.path for c in changes if c.after is not None and is_test_module(c.path))


def changed_test_nodes(changes: ChangeSet) -> tuple[str, ...]:
    """For pytest: the tests the fix adds or changes, as node ids (`tests/x.py::test_y`,
    `tests/x.py::TestZ::test_w`, unittest classes too); a new file, or one whose change is outside any test (a
    fixture, a helper, an import), whole. The proof runs only these on the code before the fix."""
    nodes: list[str] = []
    for path in changed_tests(changes):
        change = changes.changes[path]
        changed = changed_test_items(path, change.before, change.after) if change.before is not None else None
        nodes += [f"{path}::{name}" for name in changed] if changed else [path]
    return tuple(nodes)


def changed_test_code(changes: ChangeSet) -> tuple[str, ...]:
    """Every test file the fix adds or changes, helpers and conftest included: the new tests need them."""
    return tuple(c.path for c in changes if c.after is not None and is_test_code(c.path))


def in_file(test_name: str, path: str) -> bool:
    """JUnit names pytest tests `tests.test_x::test_y` (classname from the module path)."""
    module = path.removesuffix(".py").replace("/", ".")
    # A module that fails to import is reported under the module's own name.
    return test_name == module or test_name.startswith((module + "::", module + "."))


def judge(new_tests: tuple[str, ...], before: TestRun | None, after: TestRun) -> RegressionProof:
    before_failed = set(before.failed_tests) if before else set()
    pre_existing = tuple(sorted(n for n in before_failed if not any(in_file(n, t) for t in new_tests)))
    if not new_tests:
        return RegressionProof(new_tests, "no_new_test", "the fix adds or changes no test: nothing proves that "
                               "it fixes the fault", pre_existing, before)
    if before is None:
        return RegressionProof(new_tests, "not_run", "the tests could not be run on the code before the fix",
                               pre_existing, before)
    if before.status == "no_tests":  # nothing ran (pytest found none of the tests asked for): proves nothing
        return RegressionProof(new_tests, "not_run", "none of the new tests ran on the code before the fix",
                               pre_existing, before)
    new_failed_before = [f for f in before.failures if any(in_file(f.name, t) for t in new_tests)]
    new_failed_after = [n for n in after.failed_tests if any(in_file(n, t) for t in new_tests)]
    if new_failed_after:
        return RegressionProof(new_tests, "fails_after", f"the new test fails with the fix too: "
                               f"{', '.join(new_failed_after[:3])}", pre_existing, before)
    if not any(any(in_file(n, t) for t in new_tests) for n in before_failed) and before.status != "error":
        return RegressionProof(new_tests, "passes_before", "the new test passes without the fix too, so it does "
                               "not show the fault", pre_existing, before)
    if after.stopped_after:
        return RegressionProof(new_tests, "not_run", f"the run with the fix stopped after {after.stopped_after} "
                               "failures, so the new test may not have run with it", pre_existing, before)
    how = "; ".join(f"{f.name}: {_first_line(f.message)}" for f in new_failed_before[:3]) or before.status
    return RegressionProof(new_tests, "fails_before_passes_after", f"fails before the fix ({how}), passes after",
                           pre_existing, before)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    # pytest marks the failing assertion or exception with "E"; its first such line is the short form.
    picked = next((line for line in lines if line.startswith("E ")), lines[0] if lines else "failed")
    return picked.removeprefix("E").strip()[:200]


def blamed_failures(after: TestRun, proof: RegressionProof) -> list[str]:
    """Failures after the fix that were not already failing before it."""
    return [name for name in after.failed_tests if name not in proof.pre_existing_failures]
