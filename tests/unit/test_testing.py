"""The test runner against real pytest subprocesses in a scratch project."""

import os
import sys
import time
from pathlib import Path

from remediate.verify.execute import build_command, run_tests

PYTEST = [sys.executable, "-m", "pytest"]


def _project(tmp_path: Path, **tests: str) -> Path:
    for name, body in tests.items():
        (tmp_path / f"{name}.py").write_text(body)
    return tmp_path


def _env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"]}


def test_pass_fail_and_skip_are_counted_from_junit(tmp_path):
    repo = _project(tmp_path, test_a="import pytest\ndef test_ok(): pass\n@pytest.mark.skip\ndef test_s(): pass\n",
                    test_b="def test_bad():\n    assert 1 == 2, 'numbers differ'\n")
    run = run_tests(repo, PYTEST, ["test_a.py", "test_b.py"], env=_env(), timeout_s=60)
    assert (run.status, run.passed, run.failed, run.skipped) == ("failed", 1, 1, 1)
    assert run.failures[0].name == "test_b::test_bad" and "numbers differ" in run.failures[0].message
    assert "1 failed" in run.output_tail


def test_passing_selection(tmp_path):
    repo = _project(tmp_path, test_a="def test_ok(): pass\n")
    run = run_tests(repo, PYTEST, ["test_a.py"], env=_env(), timeout_s=60)
    assert run.ok and run.passed == 1 and run.exit_code == 0


def test_collection_error_is_an_error_not_a_pass(tmp_path):
    repo = _project(tmp_path, test_a="import nonexistent_module_xyz\ndef test_ok(): pass\n")
    run = run_tests(repo, PYTEST, ["test_a.py"], env=_env(), timeout_s=60)
    assert run.status == "error" and not run.ok


def test_no_tests_collected(tmp_path):
    repo = _project(tmp_path, test_a="x = 1\n")
    assert run_tests(repo, PYTEST, ["test_a.py"], env=_env(), timeout_s=60).status == "no_tests"


def test_timeout_kills_the_whole_process_tree(tmp_path):
    marker = tmp_path / "grandchild.pid"
    repo = _project(tmp_path, test_slow=f"""import subprocess, sys, time
def test_hangs():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    open({str(marker)!r}, "w").write(str(child.pid))
    time.sleep(120)
""")
    run = run_tests(repo, PYTEST, ["test_slow.py"], env=_env(), timeout_s=3)
    assert run.status == "timed_out"
    pid = int(marker.read_text())
    time.sleep(0.2)
    # Gone, or a zombie waiting for init to reap it: either way no longer running.
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_tests_see_only_the_environment_given(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_should_not_leak")
    repo = _project(tmp_path, test_env="import os\ndef test_env():\n    assert 'GITHUB_TOKEN' not in os.environ\n")
    assert run_tests(repo, PYTEST, ["test_env.py"], env=_env(), timeout_s=60).ok


def test_stdin_is_closed(tmp_path):
    repo = _project(tmp_path, test_in="import sys\ndef test_in():\n    assert sys.stdin.read() == ''\n")
    run = run_tests(repo, [*PYTEST, "-s"], ["test_in.py"], env=_env(), timeout_s=60)
    assert run.ok


def test_command_templates():
    assert build_command(["pytest"], ["t.py"], "/j.xml") == ["pytest", "--junitxml=/j.xml", "-p", "no:cacheprovider",
                                                             "-q", "t.py"]
    assert build_command(["gotestsum", "--junitfile", "{junit}", "--", "{tests}"], ["./pkg"], "/j.xml") == [
        "gotestsum", "--junitfile", "/j.xml", "--", "./pkg"]


SUREFIRE = """import pathlib
reports = pathlib.Path("target/surefire-reports")
reports.mkdir(parents=True, exist_ok=True)
(reports / "TEST-com.acme.UserServiceTest.xml").write_text(
    '<testsuite name="com.acme.UserServiceTest" tests="2" failures="1">'
    '<testcase classname="com.acme.UserServiceTest" name="processesQueue"/>'
    '<testcase classname="com.acme.UserServiceTest" name="boundsAuditLog">'
    '<failure message="expected: 1000 but was: 5000"/></testcase></testsuite>')
(reports / "TEST-com.acme.ApiTest.xml").write_text(
    '<testsuite name="com.acme.ApiTest" tests="1"><testcase classname="com.acme.ApiTest" name="profile"/></testsuite>')
raise SystemExit(1)
"""


def test_report_folders_of_other_runners_are_read(tmp_path):
    stale = tmp_path / "target" / "surefire-reports"
    stale.mkdir(parents=True)
    (stale / "TEST-old.xml").write_text('<testsuite name="old" tests="1"><testcase classname="Old" name="x">'
                                        '<failure message="stale"/></testcase></testsuite>')
    run = run_tests(tmp_path, [sys.executable, "-c", SUREFIRE], [], env=_env(), timeout_s=60,
                    junit_glob="target/surefire-reports/*.xml")
    assert (run.status, run.passed, run.failed) == ("failed", 2, 1)
    assert [f.name for f in run.failures] == ["com.acme.UserServiceTest::boundsAuditLog"]
    assert "expected: 1000 but was: 5000" in run.failures[0].message


def test_pytest_gets_maxfail_only_when_asked():
    assert "--maxfail=5" in build_command(["python", "-m", "pytest"], ["tests/a.py"], "/j.xml", 5)
    assert not any(p.startswith("--maxfail") for p in build_command(["python", "-m", "pytest"], [], "/j.xml", 0))
    # A custom command is the user's: nothing is added to it.
    assert build_command(["npx", "jest", "{tests}"], ["a.test.js"], "/j.xml", 5) == ["npx", "jest", "a.test.js"]


def test_a_run_stopped_at_max_failures_says_so(tmp_path):
    failing = "".join(f"def test_{i}():\n    assert False\n\n\n" for i in range(6))
    repo = _project(tmp_path, test_many=failing)
    capped = run_tests(repo, [sys.executable, "-m", "pytest"], ["test_many.py"], env=_env(), timeout_s=60,
                       max_failures=2)
    assert capped.status == "failed" and capped.failed == 2 and capped.stopped_after == 2
    assert not capped.complete and capped.to_dict()["stopped_after_failures"] == 2
    whole = run_tests(repo, [sys.executable, "-m", "pytest"], ["test_many.py"], env=_env(), timeout_s=60)
    assert whole.failed == 6 and whole.complete and whole.stopped_after is None


def test_the_code_before_the_fix_runs_without_tracebacks():
    plain = build_command(["python", "-m", "pytest"], ["tests/t.py::test_a"], "/j.xml")
    quiet = build_command(["python", "-m", "pytest"], ["tests/t.py::test_a"], "/j.xml", tracebacks=False)
    assert "--tb=no" not in plain and quiet[-2:] == ["--tb=no", "tests/t.py::test_a"]


def test_failures_are_rerun_before_the_fix_as_single_tests_or_their_files():
    from remediate.records import TestRun
    from remediate.verify.runner import MAX_BASELINE_NODES, _failing_tests

    def failed(command: tuple[str, ...], *names: str) -> TestRun:
        return TestRun(command, ("tests/test_a.py", "tests/test_a/test_b.py"), "failed", failed=len(names),
                       failed_tests=names)

    pytest_run = failed(("python", "-m", "pytest"), "tests.test_a::test_x[1.5]", "tests.test_a::test_x[2]",
                        "tests.test_a.test_b.TestY::test_z", "tests.test_a")
    assert _failing_tests(pytest_run) == ["tests/test_a.py::test_x", "tests/test_a/test_b.py::TestY::test_z",
                                          "tests/test_a.py"]
    many = failed(("pytest",), *(f"tests.test_a::test_{i}" for i in range(MAX_BASELINE_NODES + 1)))
    assert _failing_tests(many) == ["tests/test_a.py"]
    assert _failing_tests(failed(("tox",), "tests.test_a::test_x")) == ["tests/test_a.py"]
    assert _failing_tests(failed(("pytest",), "elsewhere::test_q")) is None
