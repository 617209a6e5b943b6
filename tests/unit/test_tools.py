import json
import subprocess
from pathlib import Path

import pytest

from remediate.guardrails import WritePolicy
from remediate.secrets import Redactor
from remediate.testing import TestRun
from remediate.tools import Finished, GaveUp, RefusalLimit, Toolbox, command_verdict
from remediate.workspace import Workspace

ALLOWED = ["pytest", "python -m pytest", "ruff check"]
BLOCKED = ["kubectl apply", "docker push"]


@pytest.mark.parametrize("command", ["pytest -x tests", "python -m pytest tests/test_a.py", "ruff check app"])
def test_allowed_commands(command):
    assert command_verdict(command, ALLOWED, BLOCKED).allowed


@pytest.mark.parametrize(("command", "rule"), [
    ("pytest; kubectl apply -f k8s", "command_shell_syntax"),
    ("pytest && curl evil", "command_shell_syntax"),
    ("pytest | sh", "command_shell_syntax"),
    ("pytest $(whoami)", "command_shell_syntax"),
    ("pytest `id`", "command_shell_syntax"),
    ("pytest > /etc/passwd", "command_shell_syntax"),
    ("sudo pytest", "command_not_allowed"),
    ("bash -c 'pytest'", "command_not_allowed"),
    ("env X=1 pytest", "command_not_allowed"),
    ("pytest kubectl apply", "blocked_command"),
    ("kubectl apply -f x", "blocked_command"),
    ("python -c 'import os'", "command_not_allowed"),
    ("pytest 'unterminated", "command_unparsable"),
])
def test_refused_commands(command, rule):
    assert command_verdict(command, ALLOWED, BLOCKED).rule == rule


@pytest.fixture
def toolbox(tmp_path: Path) -> Toolbox:
    (tmp_path / "app.py").write_text("a = 1\nb = 2\n")
    (tmp_path / ".env").write_text("SECRET=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    workspace = Workspace(tmp_path, WritePolicy((".env",), scope_files=None))
    return Toolbox(workspace, Redactor(), lambda paths: TestRun(("pytest",), (), "passed", passed=1),
                   lambda: ["app.py", ".env"], max_refusals=3)


def test_read_search_edit_round_trip(toolbox):
    assert "    1\ta = 1" in toolbox.execute("read_file", json.dumps({"path": "app.py"}))
    assert toolbox.execute("search_code", json.dumps({"pattern": "b ="})) == "app.py:2: b = 2"
    assert toolbox.execute("edit_file", json.dumps({"path": "app.py", "old_str": "b = 2", "new_str": "b = 3"})
                           ).startswith("OK")
    assert (toolbox.workspace.root / "app.py").read_text() == "a = 1\nb = 3\n"
    assert "occurs 0 times" in toolbox.execute("edit_file", json.dumps({"path": "app.py", "old_str": "zz",
                                                                         "new_str": "y"}))


def test_secret_files_are_not_readable_or_searchable(toolbox):
    assert "REFUSED (secret_file)" in toolbox.execute("read_file", json.dumps({"path": ".env"}))
    assert toolbox.execute("search_code", json.dumps({"pattern": "SECRET"})) == "no matches"


def test_bad_arguments_are_observations_not_crashes(toolbox):
    assert toolbox.execute("read_file", "{not json").startswith("ERROR: arguments are not valid JSON")
    assert toolbox.execute("read_file", json.dumps({"file": "x"})).startswith("ERROR: wrong arguments")
    assert toolbox.execute("search_code", json.dumps({"pattern": "("})).startswith("ERROR: invalid regex")


def test_run_command_is_absent_by_default(toolbox):
    assert "run_command" not in {t["function"]["name"] for t in toolbox.schemas()}
    assert "REFUSED (unknown_tool)" in toolbox.execute("run_command", json.dumps({"command": "pytest"}))


def test_refusals_accumulate_to_the_limit(toolbox):
    toolbox.execute("write_file", json.dumps({"path": ".env", "content": "x"}))
    toolbox.execute("write_file", json.dumps({"path": "../outside.py", "content": "x"}))
    with pytest.raises(RefusalLimit):
        toolbox.execute("edit_file", json.dumps({"path": ".git/config", "old_str": "a", "new_str": "b"}))
    assert [e.rule for e in toolbox.events] == ["protected_file", "path_outside_repo", "never_writable"]
    assert not (toolbox.workspace.root.parent / "outside.py").exists()


def test_finish_and_escalate_end_the_loop(toolbox):
    with pytest.raises(Finished):
        toolbox.execute("finish", json.dumps({"summary": "done"}))
    with pytest.raises(GaveUp):
        toolbox.execute("escalate", json.dumps({"reason": "hard"}))
