"""Running a test command: a process group with a timeout, no stdin, no secrets, JUnit results."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped

from remediate.processes import Finished, run_bounded
from remediate.records import TestFailure, TestRun

OUTPUT_TAIL_CHARS = 4000


def build_command(template: Sequence[str], tests: Sequence[str], junit_path: str, max_failures: int = 0,
                  tracebacks: bool = True) -> list[str]:
    """`{junit}` and `{tests}` placeholders if the template has them; pytest gets its flags appended, with
    `--maxfail` when `max_failures` is set and `--tb=no` without `tracebacks` (the JUnit report still has each
    failure's message)."""
    command: list[str] = []
    has_tests = any("{tests}" in part for part in template)
    for part in template:
        if part == "{tests}":
            command.extend(tests)
        else:
            command.append(part.replace("{junit}", junit_path))
    if not any("{junit}" in part for part in template) and any("pytest" in part for part in template):
        command += [f"--junitxml={junit_path}", "-p", "no:cacheprovider", "-q"]
        if max_failures:
            command.append(f"--maxfail={max_failures}")
        if not tracebacks:
            command.append("--tb=no")
    if not has_tests:
        command += list(tests)
    return command


Launch = Callable[[Sequence[str], Path, Mapping[str, str], float], Finished]


def run_tests(repo: Path, template: Sequence[str], tests: Sequence[str], *, env: Mapping[str, str],
              timeout_s: float, reason: Mapping[str, str] | None = None, junit_glob: str | None = None,
              max_failures: int = 0, launch: Launch = run_bounded, junit_dir: Path | None = None,
              tracebacks: bool = True) -> TestRun:
    """`max_failures` stops pytest once that many tests failed, when the outcome is decided anyway. `launch` starts
    the command (the sandbox's, for code of the change); the JUnit report goes to `junit_dir`, which it must be
    able to write."""
    with tempfile.TemporaryDirectory(prefix="remediate-junit-") as own:
        junit = os.path.join(junit_dir or own, "junit.xml")
        command = build_command(template, tests, junit, max_failures, tracebacks)
        capped = any(part.startswith("--maxfail=") for part in command)
        stale = set(repo.glob(junit_glob)) if junit_glob else set()
        for old in stale:
            old.unlink()  # reports from an earlier run must not pass for this one
        started = time.monotonic()
        done = launch(command, repo, env, timeout_s)
        run = TestRun(tuple(command), tuple(tests), "error", duration_s=time.monotonic() - started,
                      output_tail=(done.start_error or done.output)[-OUTPUT_TAIL_CHARS:], exit_code=done.exit_code,
                      selection_reason=reason or {})
        if done.start_error:
            return run
        if done.timed_out:
            return _with(run, status="timed_out")
        reports = [junit] if os.path.lexists(junit) else sorted(map(str, repo.glob(junit_glob))) if junit_glob else []
        if reports:
            result = _from_junit(run, reports)
            if capped and result.failed + result.errors >= max_failures:
                result = _with(result, stopped_after=max_failures)
            return result
        if done.exit_code == 5:
            return _with(run, status="no_tests")
        if any(junit in part for part in command):
            # We asked for the report and got none: the runner did not get to the end (a test that ended the
            # interpreter at import, exit code 0 or not). Never a pass.
            return _with(run, status="error", output_tail=f"the test runner wrote no JUnit report (exit code "
                         f"{done.exit_code}): it did not run to its end\n{run.output_tail}"[-OUTPUT_TAIL_CHARS:])
        return _with(run, status="passed" if done.exit_code == 0 else "error")


def _with(run: TestRun, **changes: Any) -> TestRun:
    return replace(run, **changes)


def _from_junit(run: TestRun, paths: list[str]) -> TestRun:
    suites = []
    for path in paths:
        try:
            xml = JUnitXml.fromstring(_read_report(path))
        except Exception as exc:  # a broken (or planted: a link, a FIFO) report is an error result, not a crash
            return _with(run, status="error", output_tail=f"unreadable JUnit XML {path}: {exc}\n{run.output_tail}")
        suites += [xml] if xml._tag == "testsuite" else list(xml)
    passed = failed = errors = skipped = 0
    failures: list[TestFailure] = []
    reported: set[str] = set()
    for suite in suites:
        for case in suite:
            results = case.result
            name = f"{case.classname}::{case.name}" if case.classname else case.name
            reported.add(case.classname or "")
            if any(isinstance(r, Skipped) for r in results):
                skipped += 1
            elif any(isinstance(r, Failure) for r in results):
                failed += 1
                failures.append(TestFailure(name, _message(results)))
            elif any(isinstance(r, Error) for r in results):
                errors += 1
                failures.append(TestFailure(name, _message(results)))
            else:
                passed += 1
    if failed:
        status = "failed"
    elif errors:
        status = "error"
    elif passed == 0:
        status = "no_tests"  # nothing collected, or everything skipped: not a pass
    elif run.exit_code not in (0, None):
        status = "error"  # the runner failed beyond what the report shows (collection, crash)
    else:
        status = "passed"
    return _with(run, status=status, passed=passed, failed=failed, errors=errors, skipped=skipped,
                 failures=tuple(failures[:20]), failed_tests=tuple(f.name for f in failures),
                 reported=tuple(sorted(reported)))


MAX_REPORT_BYTES = 20_000_000


def _read_report(path: str) -> bytes:
    """The report's bytes: code of the change wrote it, so never through a link, never blocking on a FIFO put
    in its place, and never larger than MAX_REPORT_BYTES."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_REPORT_BYTES:
            raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
        return handle.read(MAX_REPORT_BYTES)


def _message(results: list[Any]) -> str:
    for result in results:
        text = (result.message or "") + "\n" + (result.text or "")
        if text.strip():
            return text.strip()[:1500]
    return ""
