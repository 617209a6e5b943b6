"""Code rules and the write policy around the team's checks: pure verdicts."""

from __future__ import annotations

import pytest

from remediate.config import Config, HookConfig, HooksConfig, QualityGateConfig
from remediate.guard.changes import ChangeSet
from remediate.guard.code_rules import CodeRule, added_lines
from remediate.guard.guardrails import WritePolicy, check_change_set, check_scripts, policy_for

PRINT = CodeRule(r"\bprint\(", "use the logger", "block", ("app/**",))
NOQA = CodeRule("# noqa", "a hotfix should not silence the linter", "warn")


def _change(path: str, before: str | None, after: str | None) -> ChangeSet:
    return ChangeSet().with_content(path, before, after)


def test_added_lines_are_the_new_file_s_lines_the_old_one_lacks_numbered_as_in_the_new_file():
    assert list(added_lines("x = 1\ny = 2\nz = 3\n", "x = 1\n++i\n--j\ny = 3\nz = 3\n")) == [
        (2, "++i"), (3, "--j"), (4, "y = 3")]
    assert list(added_lines("a\n", "a\na\n")) == [(2, "a")]  # a copy of an existing line is added too


@pytest.mark.parametrize("after", [
    "#\x0c\n#\x0c\n#\x0c\neval(input())\n",  # form feeds that shift a diff's hunk counts
    "import os\x0c; eval(input())\n",
    "x = 1\u2028eval(input())\n",  # a line terminator in JavaScript, not in a diff
    " " * 5000 + "eval(input())\n",  # no length cap: RE2 is linear
])
def test_what_hides_from_a_diff_does_not_hide_from_a_rule(after):
    rule = CodeRule(r"eval\(", "no eval", "block")
    verdict = check_change_set(_change("app/run.py", "", after), WritePolicy(scope_files=None, code_rules=(rule,)))
    assert (verdict.allowed, verdict.rule) == (False, "code_rule")


def test_a_secret_after_a_form_feed_is_still_a_secret_in_the_change():
    policy = WritePolicy(scope_files=None, secret_values=frozenset({"ghs_knownsecret0123456789"}))
    verdict = check_change_set(_change("app/x.py", "", "#\x0c\n#\x0cTOKEN = 'ghs_knownsecret0123456789'\n"), policy)
    assert (verdict.allowed, verdict.rule) == (False, "secret_in_change")


@pytest.mark.parametrize(("path", "after", "allowed"), [
    ("app/svc.py", "def f():\n    print('x')\n", False),
    ("app/svc.py", "def f():\n    fingerprint(x)\n", True),  # \b: not the word print
    ("app/svc.py", "def f():\n    reprint()\n", True),
    ("tests/test_svc.py", "def test_f():\n    print('x')\n", True),  # outside the rule's file_patterns
])
def test_a_blocking_rule_refuses_added_lines_it_matches_in_its_paths(path, after, allowed):
    verdict = check_change_set(_change(path, "def f():\n    pass\n", after),
                               WritePolicy(scope_files=None, code_rules=(PRINT,)))
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.rule == "code_rule" and verdict.detail.startswith(f"{path}:2: use the logger")


def test_a_line_that_was_there_before_is_not_the_change_s():
    before = "def f():\n    print('old')\n    return 1\n"
    verdict = check_change_set(_change("app/svc.py", before, before.replace("return 1", "return 2")),
                               WritePolicy(scope_files=None, code_rules=(PRINT,)))
    assert verdict.allowed


def test_a_warning_rule_allows_and_says_so_once_per_line():
    after = "x = 1  # noqa: E501\ny = 2  # noqa\n"
    verdict = check_change_set(_change("app/svc.py", "", after), WritePolicy(scope_files=None, code_rules=(NOQA,)))
    assert verdict.allowed and verdict.warnings == (
        "app/svc.py:1: a hotfix should not silence the linter (code rule '# noqa')",
        "app/svc.py:2: a hotfix should not silence the linter (code rule '# noqa')")


def test_a_rename_and_a_deletion_are_judged_on_what_they_add():
    renamed = ChangeSet().with_rename("app/a.py", "app/b.py", "x = 1\n", "x = 1\nprint(x)\n")
    assert not check_change_set(renamed, WritePolicy(scope_files=None, code_rules=(PRINT,))).allowed
    # Moved from a path the rule does not cover: every line is new to the rule.
    moved_in = ChangeSet().with_rename("notes/snippet.txt", "app/run.py", "print(input())\n", "print(input())\n")
    assert not check_change_set(moved_in, WritePolicy(scope_files=None, code_rules=(PRINT,))).allowed
    deleted = _change("app/a.py", "print(x)\n", None)
    assert check_change_set(deleted, WritePolicy(scope_files=None, code_rules=(PRINT,))).allowed


@pytest.mark.parametrize(("command", "protected"), [
    ("./scripts/fmt.sh $ARCHITECT_FILE_PATH", ["/scripts/", "/scripts/fmt.sh"]),
    ("python tools/lint.py --strict", ["/tools/", "/tools/lint.py"]),
    ("bash ci/gate.sh && make lint", ["/ci/", "/ci/gate.sh"]),
    ("cd scripts && ./check.sh", ["/check.sh", "/scripts/", "/scripts/check.sh"]),
    ("./scripts/check.sh; echo done", ["/scripts/", "/scripts/check.sh"]),
    ("bash -c './scripts/check.sh --ci'", ["/scripts/", "/scripts/check.sh"]),
    ("$ARCHITECT_WORKSPACE/scripts/check.sh", ["/scripts/", "/scripts/check.sh"]),
    ("sh scripts/lint", ["/scripts/", "/scripts/lint"]),
    ("FOO=1 ./bin/run", ["/bin/", "/bin/run"]),
    ("if ./scripts/guard.sh; then exit 0; fi", ["/scripts/", "/scripts/guard.sh"]),
    ("python -m tools.lint", ["/tools.py", "/tools/", "/tools/__init__.py", "/tools/lint.py", "/tools/lint/__init__.py",
                              "/tools/lint/__main__.py"]),
    ("python -m mypy app", ["/mypy.py", "/mypy/", "/mypy/__init__.py", "/mypy/__main__.py"]),  # shadows of the tool
    # A project's own package: its module, not the package the fix is in.
    ("python -m app.cli check", ["/app.py", "/app/__init__.py", "/app/cli.py", "/app/cli/__init__.py",
                                 "/app/cli/__main__.py"]),
    # What a check is given to look at is its target, not its code: the fix must stay possible.
    ("ruff check app/totals.py", []), ("mypy app", []), ('ruff format "$ARCHITECT_FILE_PATH"', []),
    ("sh ../outside.sh", []),
    # Found in review: newlines, wrappers, options with values, -mX, a script anywhere on the line.
    ("set -e\n./scripts/check.sh", ["/scripts/", "/scripts/check.sh"]),
    ("timeout 300 ./scripts/check.sh", ["/scripts/", "/scripts/check.sh"]),
    ("bash -o pipefail scripts/check.sh", ["/scripts/", "/scripts/check.sh"]),
    ("xargs -n 1 ./bin/run < list", ["/bin/", "/bin/run"]),
    ("python -mtools.lint", ["/tools.py", "/tools/", "/tools/__init__.py", "/tools/lint.py", "/tools/lint/__init__.py",
                             "/tools/lint/__main__.py"]),
    ("ruff check scripts", ["/scripts/"]),  # a folder that holds nothing of the fix
    ("echo `./scripts/check.sh`", ["/scripts/", "/scripts/check.sh"]),
    ("cd backend && ./scripts/check.sh", ["/backend/", "/backend/scripts/", "/backend/scripts/check.sh",
                                          "/scripts/", "/scripts/check.sh"]),
    ("ruff check --config=ci/ruff-ci.toml .", ["/ci/", "/ci/ruff-ci.toml"]),
    ("PYTHONPATH=src python -m lint", ["/lint.py", "/lint/", "/lint/__init__.py", "/lint/__main__.py", "/src/",
                                       "/src/lint.py", "/tools/", "/tools/lint.py"]),
])
def test_what_a_check_runs_from_the_repository_is_protected_and_what_it_checks_is_not(command, protected):
    config = Config(guardrails={"quality_gates": [QualityGateConfig(name="g", command=command)]})
    tracked = ["scripts/fmt.sh", "scripts/lint", "scripts/check.sh", "scripts/guard.sh", "tools/lint.py",
               "ci/gate.sh", "bin/run", "app/totals.py", "src/lint.py", "backend/scripts/check.sh", "ci/ruff-ci.toml"]
    assert check_scripts(config, tracked, {"app/totals.py"}) == protected


def test_with_checks_configured_the_tools_configs_and_their_shadows_are_not_writable():
    config = Config(hooks=HooksConfig(post_tool_use=[HookConfig(command="python -m ruff format x")]))
    policy, _ = policy_for(config, frozenset({"app/svc.py"}), frozenset(), ["app/svc.py"])
    cases = (("ruff.py", "protected_file"), ("ruff.toml", "check_config"), ("web/package.json", "check_config"),
             ("GNUmakefile", "check_config"), ("lib/rules.mk", "check_config"), (".ignore", "check_config"),
             ("RUFF.TOML", "check_config"), ("node_modules/x/index.js", "check_config"))
    for path, rule in cases:
        verdict = check_change_set(_change(path, "a\n", "b\n"), policy)
        assert (verdict.allowed, verdict.rule) == (False, rule), path


def test_with_a_python_m_check_no_module_may_be_added_at_the_root():
    config = Config(guardrails={"edit_scope": "repo",
                                "quality_gates": [QualityGateConfig(name="t", command="python -m pytest -q")]})
    policy, _ = policy_for(config, frozenset(), frozenset(), ["app/svc.py", "setup.py"])
    for path in ("argparse.py", "pluggy/__init__.py"):
        verdict = check_change_set(_change(path, None, "x = 1\n"), policy)
        assert (verdict.allowed, verdict.rule) == (False, "check_config"), path
    assert check_change_set(_change("app/new.py", None, "x = 1\n"), policy).allowed
    assert check_change_set(_change("setup.py", "a = 1\n", "a = 2\n"), policy).allowed
    assert check_change_set(_change("tests/test_new.py", None, "def test_x(): ...\n"), policy).allowed
    moved = ChangeSet().with_rename("app/notes.py", "argparse.py", "x = 1\n", "x = 1\n")
    assert check_change_set(moved, policy).rule == "check_config"  # renamed in is added too
    git_m = Config(guardrails={"edit_scope": "repo", "quality_gates": [QualityGateConfig(
        name="c", command="git commit -m wip && ruff check .")]})
    assert policy_for(git_m, frozenset(), frozenset(), ["app/svc.py"])[0].root_entries is None  # not python -m


def test_without_hooks_or_gates_the_tools_configs_are_ordinary_files():
    policy, _ = policy_for(Config(guardrails={"edit_scope": "repo"}), frozenset(), frozenset())
    assert check_change_set(_change("package.json", "{}\n", '{"a": 1}\n'), policy).allowed


def test_a_config_file_named_by_the_config_input_is_not_writable_either(tmp_path):
    from remediate.config import load_config

    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "remediate.yaml").write_text("guardrails: {edit_scope: repo}\n")
    config = load_config(tmp_path, "ci/remediate.yaml")
    policy, _ = policy_for(config, frozenset(), frozenset())
    verdict = check_change_set(_change("ci/remediate.yaml", "a\n", "b\n"), policy)
    assert (verdict.allowed, verdict.rule) == (False, "protected_file")

