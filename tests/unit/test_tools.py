import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.agent.tools import Finished, GaveUp, RefusalLimit, Toolbox
from remediate.gitops import Git
from remediate.guard.guardrails import WritePolicy
from remediate.guard.sandbox import Sandbox
from remediate.guard.workspace import Workspace
from remediate.secrets import Redactor
from remediate.verify.execute import TestRun


@pytest.fixture
def toolbox(tmp_path: Path) -> Toolbox:
    (tmp_path / "app.py").write_text("a = 1\nb = 2\n")
    (tmp_path / ".env").write_text("SECRET=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")
    _commit(tmp_path)
    workspace = Workspace(tmp_path, WritePolicy((".env",), scope_files=None))
    return Toolbox(workspace, Redactor(), lambda paths: TestRun(("pytest",), (), "passed", passed=1),
                   Git.open(tmp_path, {"PATH": os.environ["PATH"]}), max_refusals=3)


def _commit(folder: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(folder), "GIT_CONFIG_GLOBAL": "/dev/null"}
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"]):
        subprocess.run(["git", *args], cwd=folder, check=True, env=env)


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


@pytest.fixture
def commanding(tmp_path: Path) -> Iterator[Toolbox]:
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    (repo / "app.py").write_text("a = 1\n")
    (repo / "config" / "production.yaml").write_text("replicas: 3\n")
    _commit(repo)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    git = Git.open(repo, env)
    sandbox = Sandbox(env, [repo], git=git)
    workspace = Workspace(repo, WritePolicy(("config/production.*",), scope_files=None))
    yield Toolbox(workspace, Redactor(), lambda paths: TestRun(("pytest",), (), "passed", passed=1),
                  git, allowed_commands=["cp", "cat", "touch", "ln", "mkfifo"],
                  blocked_commands=["cp -f"], sandbox=sandbox, max_refusals=10)
    sandbox.close()


def test_commands_run_without_secrets_and_report_output(commanding, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    assert commanding.execute("run_command", json.dumps({"command": "cat app.py"})) == "exit code 0\na = 1\n"
    assert commanding.execute("run_command", json.dumps({"command": ["cat", "app.py"]})) == "exit code 0\na = 1\n"
    assert "run_command" in {t["function"]["name"] for t in commanding.schemas()}


def test_a_command_writing_a_protected_file_changes_nothing(commanding):
    root = commanding.workspace.root
    result = commanding.execute("run_command", json.dumps({"command": "cp app.py config/production.yaml"}))
    assert "REFUSED (protected_file)" in result and "none of its changes were taken" in result
    assert (root / "config" / "production.yaml").read_text() == "replicas: 3\n"
    assert commanding.events[-1].rule == "protected_file" and len(commanding.workspace.changes) == 0


def test_a_command_writing_an_allowed_file_joins_the_change(commanding):
    result = commanding.execute("run_command", json.dumps({"command": "cp app.py app_copy.py"}))
    assert result.startswith("exit code 0")
    assert commanding.workspace.changes.files_touched == {"app_copy.py"}
    assert commanding.workspace.changes.changes["app_copy.py"].status == "added"
    assert (commanding.workspace.root / "app_copy.py").read_text() == "a = 1\n"  # written after the verdict


def test_links_and_special_files_a_command_makes_are_not_taken(commanding):
    for argv in (["ln", "-s", "config/production.yaml", "link.yaml"], ["mkfifo", "pipe"]):
        result = commanding.execute("run_command", json.dumps({"command": argv}))
        assert "REFUSED (binary_content)" in result, result
    root = commanding.workspace.root
    assert not (root / "link.yaml").exists() and not (root / "pipe").exists()
    assert len(commanding.workspace.changes) == 0


def test_blocked_and_compound_commands(commanding):
    assert "REFUSED (blocked_command)" in commanding.execute("run_command", json.dumps(
        {"command": "cp -f app.py x.py"}))
    out = commanding.execute("run_command", json.dumps({"command": "cat app.py && cat app.py | cat"}))
    assert "REFUSED (command_not_simple)" in out
    assert len(commanding.workspace.changes) == 0


def test_mcp_arguments_that_carry_a_known_secret_are_never_sent(toolbox):
    from remediate.mcp.client import McpTool

    sent = []

    class Hub:
        def __init__(self) -> None:
            self.tools = {"mcp__logs__query": McpTool("logs", "query", "search logs", {"type": "object"}, True)}

        def call(self, tool, arguments, *, by):
            sent.append(arguments)
            raise AssertionError("nothing may be sent")

    toolbox.mcp = Hub()
    toolbox.redact.add("ghs_knownsecret0123456789")
    result = toolbox.execute("mcp__logs__query", json.dumps({"q": "service:x token:ghs_knownsecret0123456789"}))
    assert "REFUSED (secret_in_mcp_arguments)" in result and sent == []
    assert toolbox.events[-1].rule == "secret_in_mcp_arguments" and "ghs_known" not in toolbox.events[-1].target


def test_a_command_sees_the_committed_tree_not_what_else_lies_in_the_checkout(commanding):
    root = commanding.workspace.root
    (root / ".npmrc").write_text("//registry.npmjs.org/:_authToken=npm_secretsecretsecret\n")  # an earlier step's
    result = commanding.execute("run_command", json.dumps({"command": ["cat", ".npmrc"]}))
    assert "npm_secret" not in result and "No such file" in result


def test_max_commands_executed_caps_run_command(commanding):
    commanding.max_commands = 1
    assert commanding.execute("run_command", json.dumps({"command": "cat app.py"})).startswith("exit code 0")
    refused = commanding.execute("run_command", json.dumps({"command": "cat app.py"}))
    assert "REFUSED (max_commands_executed)" in refused and commanding.events[-1].rule == "max_commands_executed"


def test_sensitive_files_are_unreadable_by_the_tools_and_absent_from_every_sandbox_tree(commanding):
    import pathspec

    commanding.unreadable = pathspec.GitIgnoreSpec.from_lines(["config/*"])
    assert commanding.sandbox is not None
    commanding.sandbox.hidden = ("config/*",)
    assert "REFUSED (secret_file)" in commanding.execute("read_file", json.dumps({"path": "config/production.yaml"}))
    assert commanding.execute("search_code", json.dumps({"pattern": "replicas"})) == "no matches"
    # Code of the change (a command here, a test or a hook alike) does not find it in its copy either.
    shown = commanding.execute("run_command", json.dumps({"command": ["cat", "config/production.yaml"]}))
    assert "replicas" not in shown and "No such file" in shown
