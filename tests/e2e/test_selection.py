"""Per-test selection end to end: the action records a coverage map (command: coverage-map), then an
incident whose fix stays inside function bodies runs only the tests that ran those functions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from peers import scenarios
from peers.harness import make_sample_repo, run_action

BODY_ONLY_FIX = [
    {"tool_calls": [scenarios._edit("        self._audit_log: list[dict] = []",
                                    "        self._audit_log: deque[dict] = deque(maxlen=1000)"),
                    scenarios.FIX_READER]},
    {"tool_calls": [{"name": "finish", "arguments": {"summary": "Bounded the audit log to 1000 entries."}}]},
]


@pytest.mark.entrypoint
def test_a_recorded_coverage_map_selects_single_tests(remediate, mcp, tmp_path, github):
    config = scenarios.config_yaml(mcp.url, extra="tests:\n  coverage_map: .remediate/coverage-map.json\n")
    repo = make_sample_repo(tmp_path / "repo", config)
    # The project's CI on the default branch: per-test coverage, then the action turns it into the map.
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=app",
                           "--cov-context=test", "tests"], cwd=repo.workspace, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = run_action(tmp_path / "record", repo.workspace, "push", {}, {"command": "coverage-map"}, {})
    assert recorded.exit_code == 0, recorded.stdout + recorded.stderr
    assert (repo.workspace / ".remediate" / "coverage-map.json").is_file()

    out = remediate(BODY_ONLY_FIX, repo=repo)
    run = out.run
    assert run.exit_code == 0, run.stdout + run.stderr
    tests = run.report["tests"]
    assert tests["status"] == "passed"
    # Single tests, each chosen because it ran a changed function when the map was recorded.
    assert tests["selected"] and all("::" in t for t in tests["selected"])
    assert "tests/test_service.py::test_recent_updates_returns_newest_last" in tests["selected"]
    assert all("when the coverage map was recorded" in why for why in tests["selection_reason"].values())
    assert "ran UserService.__init__, UserService.recent_updates" in " ".join(tests["selection_reason"].values())
    # The map file itself is not part of the fix.
    assert {c["path"] for c in run.report["changes"]} == {"app/users/service.py"}


def test_a_fix_beyond_function_bodies_falls_back_to_the_import_graph(remediate, mcp, tmp_path):
    config = scenarios.config_yaml(mcp.url, extra="tests:\n  coverage_map: .remediate/coverage-map.json\n")
    repo = make_sample_repo(tmp_path / "repo", config)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=app",
                    "--cov-context=test", "tests"], cwd=repo.workspace, capture_output=True, check=True)
    assert run_action(tmp_path / "record", repo.workspace, "push", {}, {"command": "coverage-map"}, {}).exit_code == 0
    out = remediate(scenarios.good_fix(), repo=repo)  # adds a module-level constant
    tests = out.run.report["tests"]
    assert out.run.exit_code == 0, out.run.stdout
    assert tests["selected"] == ["tests/test_audit_log_bounded.py", "tests/test_service.py"]


ALREADY_BROKEN = '''from app.users.service import UserService
from app.users.store import UserStore


def test_recent_updates_of_a_fresh_service_lists_the_seed_user():
    assert UserService(UserStore()).recent_updates() == [{"user_id": "seed"}]  # broken before any fix
'''


def test_single_tests_that_failed_before_the_fix_too_are_not_blamed_on_it(remediate, mcp, tmp_path):
    config = scenarios.config_yaml(mcp.url, extra="tests:\n  coverage_map: .remediate/coverage-map.json\n")
    repo = make_sample_repo(tmp_path / "repo", config, extra_files={"tests/test_seed.py": ALREADY_BROKEN})
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=app",
                    "--cov-context=test", "tests"], cwd=repo.workspace, capture_output=True)  # one test fails
    assert run_action(tmp_path / "record", repo.workspace, "push", {}, {"command": "coverage-map"}, {}).exit_code == 0
    out = remediate(BODY_ONLY_FIX, repo=repo)
    run = out.run
    # The baseline ran the same single tests on the code before the fix, so the old failure is known as old.
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.outputs["reason"] == "tests_pass_except_pre_existing_failures"
    assert "tests/test_seed.py::test_recent_updates_of_a_fresh_service_lists_the_seed_user" in \
        run.report["tests"]["selected"]
    assert run.report["tests"]["regression_proof"]["pre_existing_failures"] == [
        "tests.test_seed::test_recent_updates_of_a_fresh_service_lists_the_seed_user"]


def test_the_single_tests_selection_names_are_node_ids_real_pytest_collects(tmp_path):
    from remediate.verify.runner import _node_id
    from remediate.verify.selection import select_affected_tests
    from tests.unit.test_selection import CONFTESTS, NODES, _seekable_changed

    after = {**_seekable_changed(), **CONFTESTS}
    for path, text in after.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    selection = select_affected_tests(after, ["pkg/more.py"], before={**NODES, **CONFTESTS}, nodes=True)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--junitxml=j.xml",
                           *selection.tests], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = sorted(line.split(" ")[0] for line in subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--co", *selection.tests], cwd=tmp_path,
        capture_output=True, text=True).stdout.splitlines() if "::" in line)
    assert ran == ["tests/sub/test_sub.py::test_big", "tests/test_autouse.py::test_a",
                   "tests/test_module_level.py::test_cases", "tests/test_more.py::SeekableTest::test_seek",
                   "tests/test_more.py::test_with_fixture", "tests/test_streams.py::test_stream"]
    # And JUnit's names of them turn back into node ids pytest runs (the baseline of failing tests).
    from junitparser import JUnitXml
    names = [f"{case.classname}::{case.name}" for suite in JUnitXml.fromfile(str(tmp_path / "j.xml")) for case in suite]
    files = {"tests.test_more": "tests/test_more.py", "tests.test_autouse": "tests/test_autouse.py",
             "tests.test_module_level": "tests/test_module_level.py", "tests.sub.test_sub": "tests/sub/test_sub.py",
             "tests.test_streams": "tests/test_streams.py"}
    nodes = [_node_id(n, next(f for m, f in files.items() if n.startswith(m + ":") or n.startswith(m + ".")))
             for n in names]
    assert sorted(nodes) == ran
