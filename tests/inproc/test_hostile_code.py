"""Code the model wrote, run as a test: it attacks whatever runs it (peers/hostile_tests.py). Nothing reaches
the workspace, its .git, our HOME, the runner's files, our stdout or the model; no process outlives the run;
the legitimate fix that follows lands exactly as vetted."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers import scenarios
from peers.harness import git, reachable_folder
from peers.hostile_tests import WORKFLOW_COMMANDS, hostile_test
from peers.inprocess import LLM_KEY, TOKEN, Case

REGRESSION_PATH = "tests/test_audit_log_bounded.py"


@pytest.fixture
def base() -> Iterator[Path]:
    """Only the sandbox's own closing keeps the sandbox user out of the runner's folders here."""
    with reachable_folder("hostile-") as folder:
        yield folder


def _open_up(case: Case) -> None:
    for path in (case.base, case.repo.workspace, case.repo.workspace / ".git", case.repo.workspace / ".git" / "hooks",
                 case.home, case.commands):
        os.chmod(path, 0o755)
    for file in (case.repo.workspace / ".git" / "config", case.repo.workspace / "Dockerfile"):
        if file.exists():
            os.chmod(file, 0o666)  # even a file anyone may write is out of reach: its folder is closed
    for file in (case.env_file, case.path_file):
        file.touch()
        os.chmod(file, 0o666)


def test_a_hostile_test_reaches_nothing_and_the_vetted_fix_lands(base, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)  # in this process's environment, where the test will look
    monkeypatch.setenv("OPENAI_API_KEY", LLM_KEY)
    case = Case(base, extra_files={"Dockerfile": "FROM python:3.11-slim\n"})
    _open_up(case)
    workspace = case.repo.workspace
    marker = Path(tempfile.gettempdir()) / f"remediate-daemon-{os.getpid()}"
    marker.unlink(missing_ok=True)
    evil = hostile_test(workspace, case.home, case.env_file, case.path_file, marker)
    git_config = (workspace / ".git" / "config").read_bytes()
    script = [{"tool_calls": [{"name": "write_file", "arguments": {"path": REGRESSION_PATH, "content": evil}},
                              {"name": "run_tests", "arguments": {"paths": [REGRESSION_PATH]}}]},
              *scenarios.good_fix()[1:]]

    report, outputs, model, stdout = case.run(script)
    # As root (this suite, CI, the container) the sandbox must have switched user: that is the layer proved here.
    assert report["sandbox"]["switched_user"] is (os.geteuid() == 0), report["sandbox"]

    # What the hostile test saw, as the model was told it: no secret anywhere, every attempt refused by the OS.
    told = next(m["content"] for m in model.requests[1] if m["role"] == "tool" and "found=" in m["content"])
    assert "found=0 pieces=[]" in told, told
    for name in ("workspace", "git-config", "git-hook", "git-commit", "home-gitconfig", "github-env", "github-path"):
        assert f"('{name}', 'failed" in told, (name, told)
    shown = "\n".join(line for line in stdout.splitlines() if not line.startswith("::add-mask::"))
    everything = json.dumps(model.requests) + shown + json.dumps(report) + json.dumps(case.github.pulls)
    assert TOKEN not in everything and TOKEN[:12] not in everything and LLM_KEY[:12] not in everything

    # Nothing reached the checkout, its git, our HOME or the runner's files.
    assert (workspace / "Dockerfile").read_text() == "FROM python:3.11-slim\n"
    assert (workspace / ".git" / "config").read_bytes() == git_config
    assert not (workspace / ".git" / "hooks" / "pre-push").exists()
    assert git(workspace, "log", "--format=%s", "-1") != "evil"
    assert git(case.repo.origin, "rev-parse", "main") == git(workspace, "rev-parse", "HEAD")
    assert not (case.home / ".gitconfig").exists()
    assert case.env_file.read_text() == "" and case.path_file.read_text() == ""
    assert not any(line.startswith(WORKFLOW_COMMANDS) for line in stdout.splitlines())

    # The daemon it left did not outlive the run (it would have written its marker after 1.5 s).
    time.sleep(2.5)
    assert not marker.exists()

    # The fix lands as vetted: the tree the test changed was a disposable copy.
    assert (report["outcome"], outputs["outcome"]) == ("fixed", "fixed"), report["detail"]
    pushed = case.repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    assert pushed is not None and "changed after the verdict" not in pushed and "deque(maxlen" in pushed
    assert case.repo.remote_file("hotfix/INC-1234", REGRESSION_PATH) == scenarios.REGRESSION_TEST
    changed = git(case.repo.origin, "diff", "--name-only", "main", "hotfix/INC-1234").split()
    assert sorted(changed) == ["app/users/service.py", REGRESSION_PATH]
    assert [e["rule"] for e in report["guardrail_events"]] == []  # the disk never changed behind our back


def test_a_dirty_checkout_is_neither_tested_nor_delivered(base):
    """Tracked files that differ from the commit checked out (an earlier step of the job changed them) are
    named; the tests run on the committed content with the vetted change, which is exactly what ships."""
    case = Case(base)
    api = case.repo.workspace / "app" / "users" / "api.py"
    committed = api.read_text()
    api.write_text("raise RuntimeError('a dirty checkout, never committed')\n")
    report, _, _, _ = case.run(scenarios.good_fix())
    assert report["outcome"] == "fixed", report["detail"]  # the dirty api.py would break every API test
    assert any("app/users/api.py" in w and "uncommitted" in w for w in report["warnings"]), report["warnings"]
    assert case.repo.remote_file("hotfix/INC-1234", "app/users/api.py") == committed
    assert [e["rule"] for e in report["guardrail_events"]] == []
