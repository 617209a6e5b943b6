"""Guardrail verdicts on proposed changes. Pure: values in, a Verdict out; no filesystem, no globals."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field

import pathspec

from remediate.config import Config
from remediate.guard.changes import ChangeSet
from remediate.guard.code_rules import CodeRule, added_lines, findings, rules_from
from remediate.guard.testfiles import TEST_CODE_GLOBS, is_test_code
from remediate.secrets import contains_secret

# Never writable, whatever the config says: git internals, CI definitions (a workflow edit with a
# write token is privilege escalation), and our own guardrail configuration.
NEVER_WRITABLE = pathspec.GitIgnoreSpec.from_lines([
    # At any depth: a .gitattributes in a subfolder sets filters and hides diffs, a file named .git is a gitdir
    # pointer, a nested .gitmodules adds submodules.
    ".git", ".git/", ".gitmodules", ".gitattributes", "/.github/",
    "/.remediate.yaml", "/.remediate.yml", "/.architect.yaml", "/.architect.yml",
    "/.remediate/",  # the action's own data, such as the coverage map that decides which tests run
])

# The test runner's configuration decides the verdict, so the change being judged cannot change it: every
# test run uses these files as the base commit has them (docs/safety.md, "An honest verdict").
TEST_RUNNER_CONFIG = pathspec.GitIgnoreSpec.from_lines([
    # At any depth: pytest takes the nearest of these above the tests it runs, in a subfolder too.
    "conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini", "setup.cfg",
    "pyproject.toml", "sitecustomize.py", "usercustomize.py", "*.pth",
])

# What the team's checks (hooks, quality gates) read to decide: with any configured, the change being checked
# cannot change them. At any depth (the tools look for the nearest), in any case.
CHECK_CONFIG = pathspec.GitIgnoreSpec.from_lines([
    # Python
    "ruff.toml", ".ruff.toml", "mypy.ini", ".mypy.ini", ".flake8", ".pylintrc", "pylintrc", ".pylintrc.toml",
    "pylintrc.toml", ".isort.cfg", ".pydocstyle", ".bandit", "noxfile.py",
    # JavaScript
    ".eslintrc", ".eslintrc.*", "eslint.config.*", ".eslintignore", ".prettierrc", ".prettierrc.*",
    "prettier.config.*", ".prettierignore", "biome.json", "biome.jsonc", ".biome.json", ".biome.jsonc",
    "package.json", "tsconfig.json", "tsconfig.*.json", ".npmrc", ".yarnrc", ".yarnrc.yml", "node_modules/",
    ".stylelintrc*", "stylelint.config.*",
    # Other languages' linters and formatters
    ".golangci.yml", ".golangci.yaml", ".golangci.toml", "rustfmt.toml", ".rustfmt.toml", "clippy.toml",
    ".cargo/", ".clang-format", ".clang-tidy", ".rubocop.yml", ".editorconfig",
    # Runners, and the ignore files tools honour (ruff and prettier read .ignore and .gitignore)
    ".pre-commit-config.yaml", "Makefile", "makefile", "GNUmakefile", "*.mk", "justfile", "Justfile", ".justfile",
    ".ignore", ".gitignore",
])
_SHELL_WORDS = re.compile(r"^\$\{?(?:ARCHITECT|REMEDIATE)_WORKSPACE\}?/")
@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str = ""
    detail: str = ""
    target: str = ""
    warnings: tuple[str, ...] = ()  # code rules of severity warn that the allowed change matches

    @classmethod
    def allow(cls, warnings: tuple[str, ...] = ()) -> Verdict:
        return cls(True, warnings=warnings)

    @classmethod
    def refuse(cls, rule: str, detail: str, target: str = "") -> Verdict:
        return cls(False, rule, detail, target)


class PathRefused(ValueError):
    """A path or command the guardrails refuse: an observation for the model, never the end of a run."""

    def __init__(self, rule: str, detail: str, path: str = "") -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.path = path


@dataclass(frozen=True)
class WritePolicy:
    protected: tuple[str, ...] = ()
    max_files_modified: int = 3
    max_lines_changed: int = 200
    # None: the whole repository is in scope (protected paths still are not).
    scope_files: frozenset[str] | None = None
    scope_globs: tuple[str, ...] = TEST_CODE_GLOBS
    # The run's known secrets: the redactor's live set, so values learned later count too.
    secret_values: Collection[str] = frozenset()
    code_rules: tuple[CodeRule, ...] = ()
    checks_configured: bool = False  # hooks or quality gates: CHECK_CONFIG is not the change's to edit
    # With a `python -m` check, the tree's root is first on its import path: the change may not add a module or
    # package there (an argparse.py would take the tool over). None: no such check; else the root's entries.
    root_entries: frozenset[str] | None = None
    _protected_spec: pathspec.PathSpec = field(init=False, repr=False, compare=False)
    _scope_spec: pathspec.PathSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_protected_spec", pathspec.GitIgnoreSpec.from_lines(self.protected))
        object.__setattr__(self, "_scope_spec", pathspec.GitIgnoreSpec.from_lines(self.scope_globs))

    def is_protected(self, path: str) -> bool:
        return self._protected_spec.match_file(path)

    def in_scope(self, path: str) -> bool:
        if self.scope_files is None:
            return True
        return path in self.scope_files or self._scope_spec.match_file(path)


def normalise_repo_path(raw: object) -> str:
    """A clean, relative POSIX path inside the repository, or PathRefused."""
    if not isinstance(raw, str) or not raw.strip():
        raise PathRefused("path_invalid", "path must be a non-empty string")
    if "\x00" in raw or any(ord(c) < 32 for c in raw):
        raise PathRefused("path_invalid", "path contains control characters")
    path = raw.strip().replace("\\", "/")
    if path.startswith("-"):
        raise PathRefused("path_invalid", f"{raw!r} is an option, not a path")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise PathRefused("path_outside_repo",
                          f"absolute path {raw!r} is not allowed; use a path relative to the repository root")
    if any(part == ".." for part in path.split("/")):
        raise PathRefused("path_outside_repo", f"{raw!r} climbs out with '..'")
    path = posixpath.normpath(path)
    if path in (".", ""):
        raise PathRefused("path_invalid", "path names the repository root, not a file")
    return path


def check_path(path: str, policy: WritePolicy) -> Verdict:
    if NEVER_WRITABLE.match_file(path) or NEVER_WRITABLE.match_file(path.lower()):
        return Verdict.refuse("never_writable", f"{path} is never writable (git internals, CI workflows and "
                              "the remediate configuration cannot be changed by the agent)", path)
    if TEST_RUNNER_CONFIG.match_file(path):
        return Verdict.refuse("test_config", f"{path} configures the test runner that judges the change; it is "
                              "taken from the base commit and cannot be changed by the agent", path)
    if policy.checks_configured and (CHECK_CONFIG.match_file(path) or CHECK_CONFIG.match_file(path.lower())):
        return Verdict.refuse("check_config", f"{path} configures the team's checks (hooks, quality gates) that "
                              "judge the change; it cannot be changed by the agent", path)
    if policy.is_protected(path):
        return Verdict.refuse("protected_file", f"{path} matches protected_files", path)
    if not policy.in_scope(path):
        return Verdict.refuse("out_of_scope", f"{path} is outside the edit scope: only the files the diagnosis "
                              "implicates and test files may change", path)
    return Verdict.allow()


def check_change_set(changes: ChangeSet, policy: WritePolicy) -> Verdict:
    """The verdict on the whole cumulative change, computed before anything is written."""
    warnings: list[str] = []
    for change in changes:
        if change.after is not None and "\x00" in change.after:
            return Verdict.refuse("binary_content", f"{change.path}: binary content is not allowed", change.path)
        # Split on "\n" only (a diff's splitlines would drop what follows a form feed from the added lines).
        added = "\n".join(text for _, text in added_lines(change.before, change.after))
        if contains_secret(added, policy.secret_values):
            return Verdict.refuse("secret_in_change", f"{change.path}: the added lines contain a credential; "
                                  "secrets never go into a commit", change.path)
        for path in change.paths:
            verdict = check_path(path, policy)
            if not verdict.allowed:
                return verdict
        top = change.path.split("/")[0]
        if (policy.root_entries is not None and (change.before is None or change.renamed_from)
                and change.path.endswith(".py") and top not in policy.root_entries and not is_test_code(change.path)):
            return Verdict.refuse("check_config", f"{change.path}: a new module at the root of the tree would come "
                                  "first on the import path of a `python -m` check and could take it over",
                                  change.path)
        for found in findings(policy.code_rules, change.path, change.before, change.after, change.renamed_from):
            if found.rule.severity == "block":
                return Verdict.refuse("code_rule", found.describe(), change.path)
            warnings.append(found.describe())
    files = changes.files_touched
    if len(files) > policy.max_files_modified:
        return Verdict.refuse("max_files_modified", f"the change would touch {len(files)} files "
                              f"({', '.join(sorted(files))}); the limit is {policy.max_files_modified}")
    lines = changes.lines_changed
    if lines > policy.max_lines_changed:
        return Verdict.refuse("max_lines_changed", f"the change would add or remove {lines} lines; "
                              f"the limit is {policy.max_lines_changed}")
    return Verdict.allow(tuple(dict.fromkeys(warnings)))


_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", "{", "}", "!", "if", "then", "elif", "else", "while", "until",
              "do"}
_INTERPRETERS = {"sh", "bash", "dash", "zsh", "ksh", "source", ".", "python", "python3", "node", "deno", "bun",
                 "ruby", "perl", "php", "exec", "env", "time", "nice", "xargs", "timeout", "command", "nohup",
                 "uv", "run", "poetry", "pipenv", "npx", "pnpm", "yarn", "sudo", "stdbuf", "ionice", "setsid"}


def check_scripts(config: Config, tracked: Collection[str] = (), targets: Collection[str] = ()) -> list[str]:
    """What the hooks' and quality gates' command lines can run from the repository, as root-anchored patterns,
    so the change cannot rewrite its own checks. Fail closed: every word that names a tracked file or folder
    (anywhere on the line: `timeout 300 ./x.sh`, `bash -o pipefail x.sh`, inner `sh -c '…'` lines too) is
    protected, with a script's folder (whose siblings it may import or source), unless it is or holds what the
    fix is about (`targets`, the implicated files: `mypy app` must not freeze the fix) or test code; a program
    word the base does not have yet (`./scripts/new.sh`) too; for `python -m name`, the module and what would
    shadow it from the tree's root (`name.py`, `name/`)."""
    files = set(tracked)
    folders = {"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)}
    fixed = set(targets)

    def about_the_fix(path: str) -> bool:
        return path in fixed or any(t.startswith(path.rstrip("/") + "/") for t in fixed) or is_test_code(path)

    found: set[str] = set()
    pending = [h.command for h in config.hooks.all()] + [g.command for g in config.guardrails.quality_gates]
    while pending:
        words = _words(pending.pop())
        program = True  # the next word is what runs
        folder = ""  # the folder a `cd` on this line entered
        for i, word in enumerate(words):
            if word in _OPERATORS:
                program = True
                continue
            previous = words[i - 1] if i else ""
            module = word[2:] if word.startswith("-m") and len(word) > 2 else word if previous == "-m" else ""
            if previous == "-c" and " " in word.strip():
                pending.append(word)  # sh -c 'a && b': its own command line
            elif module and re.fullmatch(r"[\w.]+", module):
                top, as_path = module.split(".")[0], module.replace(".", "/")
                found.update({f"/{top}.py", f"/{as_path}.py", f"/{as_path}/__main__.py"})
                parts = as_path.split("/")
                found.update(f"/{'/'.join(parts[:i])}/__init__.py" for i in range(1, len(parts) + 1))
                if not any(f.startswith(top + "/") for f in files):
                    found.add(f"/{top}/")  # a package the tree does not have: none may appear to shadow the tool
                folder = posixpath.dirname(as_path)
                if folder and not about_the_fix(folder):
                    found.add(f"/{folder}/")  # the module's siblings, which it may import
                # The module wherever an import path (PYTHONPATH=src, a src layout) may find it.
                for tracked_file in files:
                    if tracked_file.endswith((f"/{as_path}.py", f"/{as_path}/__main__.py")):
                        found.update({"/" + tracked_file, "/" + posixpath.dirname(tracked_file) + "/"})
            elif previous in ("cd", "pushd") and (entered := _repo_word(word)):
                folder = entered  # later words of this line are read from there too
                if not about_the_fix(entered):
                    found.add("/" + entered.rstrip("/") + "/")
            else:
                # A word, or the value of an option (`--config=ci/ruff.toml`), from the root or the folder cd entered.
                value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
                for path in {p for p in (_repo_word(value), _repo_word(posixpath.join(folder, value)) if folder
                                         else "") if p}:
                    if path in files and not about_the_fix(path):
                        found.add("/" + path)
                        if "/" in path and not about_the_fix(posixpath.dirname(path)):
                            found.add("/" + posixpath.dirname(path) + "/")
                    elif path in folders and not about_the_fix(path):
                        found.add("/" + path + "/")
                    elif program and not word.startswith("-") and \
                            re.search(r"\.(?:sh|bash|py|js|cjs|mjs|ts|rb|pl)$", path):
                        found.add("/" + path)  # a script the base does not have yet: not the change's to add either
            if program and re.fullmatch(r"[A-Za-z_]\w*=.*", word):
                continue  # FOO=1 ./run: an assignment, the program comes next
            if not word.startswith("-"):
                program = posixpath.basename(word) in _INTERPRETERS
    return sorted(p for p in found if p not in ("/", "//") and p.lstrip("/") not in fixed)


def _repo_word(word: str) -> str:
    """A command word as a repository path ("" when it cannot be one)."""
    path = _SHELL_WORDS.sub("", word)
    path = posixpath.normpath(path[2:] if path.startswith("./") else path)
    if path.startswith(("/", "..", "$", "~")) or path in (".", ""):
        return ""
    return path


def _words(command: str) -> list[str]:
    """A command line's words, shell operators (`;`, `&&`, `|`, parentheses, newlines) apart from them."""
    for separator in ("\n", "`", "$("):  # a new line, and command substitutions, start a command
        command = command.replace(separator, " ; ")
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return command.split()


def policy_for(config: Config, implicated: frozenset[str], secret_values: Collection[str],
               tracked: Collection[str] = ()) -> tuple[WritePolicy, str | None]:
    """The run's write policy from the config and the files the diagnosis implicates, and a warning when
    the suspects scope has nothing to hold on to."""
    guardrails, tests = config.guardrails, config.tests
    scope: frozenset[str] | None = None
    warning = None
    if guardrails.edit_scope == "suspects":
        if implicated:
            scope = implicated
        else:
            warning = "the diagnosis names no file found in the repository: the edit scope is the whole repository"
    protected = list(guardrails.protected_files)
    if tests.coverage_map:  # it decides which tests judge the fix: never the model's to edit
        protected.append("/" + tests.coverage_map.lstrip("/"))
    protected += guardrails.sensitive_files
    if config.source_path:  # a config the `config` input names elsewhere in the tree is as fixed as the root one
        protected.append("/" + config.source_path)
    checks = bool(config.hooks.all() or guardrails.quality_gates)
    commands = [h.command for h in config.hooks.all()] + [g.command for g in guardrails.quality_gates]
    runs_modules = any(re.search(r"\bpython[\d.]*\s+(?:-\w+\s+)*-m\s*[A-Za-z_]", command) for command in commands)
    root_entries = frozenset(path.split("/")[0] for path in tracked) if runs_modules else None
    protected += check_scripts(config, tracked, implicated)
    policy = WritePolicy(tuple(protected), guardrails.max_files_modified, guardrails.max_lines_changed, scope,
                         (*TEST_CODE_GLOBS, *guardrails.extra_scope), secret_values,
                         rules_from(guardrails.code_rules), checks, root_entries)
    return policy, warning
