import pytest

from remediate.guard.changes import ChangeSet
from remediate.guard.guardrails import PathRefused, WritePolicy, check_change_set, check_path, normalise_repo_path

PROTECTED = ("*.env*", "config/production.*", "k8s/production/**", "Dockerfile*", "*.lock")
POLICY = WritePolicy(PROTECTED, max_files_modified=3, max_lines_changed=10,
                     scope_files=frozenset({"app/users/service.py"}))


@pytest.mark.parametrize(("path", "rule"), [
    (".github/workflows/deploy.yml", "never_writable"),
    (".github/actions/x/action.yml", "never_writable"),
    (".git/config", "never_writable"),
    (".git/hooks/pre-commit", "never_writable"),
    ("vendor/.git/config", "never_writable"),
    (".GitHub/workflows/x.yml", "never_writable"),
    (".remediate.yaml", "never_writable"),
    (".architect.yaml", "never_writable"),
    (".gitmodules", "never_writable"),
    (".env", "protected_file"),
    ("services/api/.env.production", "protected_file"),
    ("config/production.yaml", "protected_file"),
    ("k8s/production/deploy/app.yaml", "protected_file"),
    ("Dockerfile", "protected_file"),
    ("build/Dockerfile.prod", "protected_file"),
    ("poetry.lock", "protected_file"),
    ("app/other.py", "out_of_scope"),
])
def test_refused_paths(path, rule):
    verdict = check_path(path, POLICY)
    assert not verdict.allowed and verdict.rule == rule and verdict.target == path


@pytest.mark.parametrize("path", ["app/users/service.py", "tests/test_service.py", "app/users/test_x.py",
                                  "tests/helpers.py", "web/src/a.test.ts"])
def test_allowed_paths(path):
    assert check_path(path, POLICY).allowed


@pytest.mark.parametrize("path", ["conftest.py", "tests/conftest.py", "tests/web/conftest.py", "pytest.ini", "tox.ini",
                                  "setup.cfg", "pyproject.toml", "sitecustomize.py", "app/evil.pth", "tests/pytest.ini",
                                  "tests/pytest.toml", "tests/.pytest.toml", "tests/tox.ini", "tests/setup.cfg",
                                  "tests/pyproject.toml", ".pytest.ini"])
def test_the_test_runner_configuration_is_never_the_models(path):
    verdict = check_path(path, WritePolicy(PROTECTED, scope_files=None))
    assert not verdict.allowed and verdict.rule == "test_config"


@pytest.mark.parametrize("raw", ["-p", "--junitxml=/tmp/x", "-k not leak"])
def test_a_path_is_never_an_option(raw):
    with pytest.raises(PathRefused) as refused:
        normalise_repo_path(raw)
    assert refused.value.rule == "path_invalid"


def test_whole_repo_scope_still_refuses_protected():
    policy = WritePolicy(PROTECTED, scope_files=None)
    assert check_path("app/other.py", policy).allowed
    assert check_path("config/production.json", policy).rule == "protected_file"


@pytest.mark.parametrize("raw", ["../etc/passwd", "/etc/passwd", "app/../../x", "..", "C:\\x", "a\\..\\..\\b",
                                 "", "   ", "a\x00b", None, 3, "."])
def test_paths_outside_or_invalid_are_refused(raw):
    with pytest.raises(PathRefused):
        normalise_repo_path(raw)


def test_normalisation_keeps_inside_paths():
    assert normalise_repo_path("./app//users/./service.py") == "app/users/service.py"


def _set(**files: tuple[str | None, str | None]) -> ChangeSet:
    changes = ChangeSet()
    for path, (before, after) in files.items():
        changes = changes.with_content(path.replace("__", "/"), before, after)
    return changes


def test_file_and_line_limits_apply_to_the_cumulative_change():
    policy = WritePolicy(PROTECTED, max_files_modified=2, max_lines_changed=4, scope_files=None)
    two = _set(a=("x\n", "y\n"), b=(None, "new\n"))
    assert check_change_set(two, policy).allowed
    three = two.with_content("c", "1\n", "2\n")
    assert check_change_set(three, policy).rule == "max_files_modified"
    many_lines = _set(a=("x\n", "1\n2\n3\n4\n"))
    verdict = check_change_set(many_lines, policy)
    assert verdict.rule == "max_lines_changed" and "5 lines" in verdict.detail


def test_binary_content_and_renames_onto_protected_paths_are_refused():
    policy = WritePolicy(PROTECTED, scope_files=None)
    assert check_change_set(_set(a=(None, "x\x00y")), policy).rule == "binary_content"
    renamed = ChangeSet().with_rename("app/x.py", "Dockerfile", "a\n", "a\n")
    assert check_change_set(renamed, policy).rule == "protected_file"
    renamed_from_protected = ChangeSet().with_rename(".env", "app/env.txt", "K=V\n", "K=V\n")
    assert check_change_set(renamed_from_protected, policy).rule == "protected_file"


def test_credentials_in_added_lines_are_refused():
    policy = WritePolicy(PROTECTED, scope_files=None, secret_values=frozenset({"mcp-bridge-token-123456"}))
    aws = _set(tests__test_x=(None, "KEY = 'AKIAIOSFODNN7EXAMPLE'\n"))
    assert check_change_set(aws, policy).rule == "secret_in_change"
    registered = _set(app=("x = 1\n", "x = 1\ntoken = 'mcp-bridge-token-123456'\n"))
    assert check_change_set(registered, policy).rule == "secret_in_change"
    # A secret already in the file before the run is not the change's doing; removing one is welcome.
    removal = _set(app=("KEY = 'AKIAIOSFODNN7EXAMPLE'\nx = 1\n", "x = 1\n"))
    assert check_change_set(removal, policy).allowed


def test_editing_back_to_the_original_drops_the_file_from_the_change():
    changes = _set(a=("x\n", "y\n")).with_content("a", "x\n", "x\n")
    assert len(changes) == 0 and changes.lines_changed == 0


@pytest.mark.parametrize("path", ["app/.gitattributes", "app/.gitmodules", "app/.git", "app/.git/config",
                                  ".GITATTRIBUTES", "deep/er/.Git"])
def test_git_control_files_are_never_writable_at_any_depth(path):
    verdict = check_path(path, WritePolicy(PROTECTED, scope_files=None))
    assert not verdict.allowed and verdict.rule == "never_writable"
