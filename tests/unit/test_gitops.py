"""Our git obeys only us: a hostile .git/config and ~/.gitconfig run nothing and redirect nothing; the token
is a header for the one call that needs it, never on argv, and only for https on the GitHub host."""

import base64
import os
import subprocess
from pathlib import Path

import pytest

from remediate.gitops import Git, GitError, blob_sha, workspace_drift

GIT = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT}, check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str = "a") -> str:
    """The files written and committed (the repository made first when it is not one yet); the commit's id."""
    if not (repo / ".git").exists():
        _git(repo.parent, "init", "-q", "-b", "main", str(repo))
    for name, text in files.items():
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    """A checkout cloned from a bare origin, whose .git/config and ~/.gitconfig try every program and redirect."""
    origin, work, trap, home = tmp_path / "origin.git", tmp_path / "work", tmp_path / "trap", tmp_path / "home"
    home.mkdir()
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    _git(tmp_path, "clone", "-q", str(origin), str(work))
    (work / "a.py").write_text("a = 1\n")
    (work / ".gitattributes").write_text("*.py filter=evil diff=evil\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "a")
    _git(work, "push", "-q", "origin", "HEAD:main")
    evil = tmp_path / "evil.sh"
    evil.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {trap}\ncat\n")
    evil.chmod(0o755)
    elsewhere = tmp_path / "elsewhere.git"
    _git(tmp_path, "init", "-q", "--bare", str(elsewhere))
    hostile_config = (f"[core]\n\tfsmonitor = {evil}\n\thooksPath = {tmp_path}/hooks\n\tpager = {evil}\n"
                      f"\tsshCommand = {evil}\n[credential]\n\thelper = !{evil}\n"
                      f"[remote \"origin\"]\n\tpushurl = {elsewhere}\n\treceivepack = {evil}\n\tuploadpack = {evil}\n"
                      f"[url \"{elsewhere}\"]\n\tinsteadOf = {origin}\n\tpushInsteadOf = {origin}\n"
                      f"[filter \"evil\"]\n\tclean = {evil}\n\tsmudge = {evil}\n\tprocess = {evil}\n"
                      f"[diff \"evil\"]\n\ttextconv = {evil}\n\tcommand = {evil}\n[diff]\n\texternal = {evil}\n"
                      f"[alias]\n\tlog = !{evil}\n[uploadpack]\n\tpackObjectsHook = {evil}\n")
    with (work / ".git" / "config").open("a") as handle:
        handle.write(hostile_config)
    (home / ".gitconfig").write_text(hostile_config)
    (tmp_path / "hooks").mkdir()
    for hook in ("pre-push", "post-checkout", "pre-commit", "reference-transaction"):
        (tmp_path / "hooks" / hook).write_text(f"#!/bin/sh\necho hook {hook} >> {trap}\n")
        (tmp_path / "hooks" / hook).chmod(0o755)
        (work / ".git" / "hooks" / hook).write_text(f"#!/bin/sh\necho hook {hook} >> {trap}\n")
        (work / ".git" / "hooks" / hook).chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}  # as the action gets it: ~/.gitconfig is hostile too
    return work, origin, trap, env


def test_a_hostile_git_config_runs_nothing_and_redirects_nothing(hostile):
    from remediate.deliver.delivery import Commit, push
    from remediate.incident.payload import Incident

    work, origin, trap, env = hostile
    git = Git.open(work, env)
    assert git.origin == str(origin) and git.branch == "main"
    assert git.tracked_files() == [".gitattributes", "a.py"]
    assert "a = 1" in (git.show_commit(git.base) or "")
    assert set(git.tree_entries()) == {".gitattributes", "a.py"}
    blob = git.run("hash-object", "-w", "--no-filters", "--stdin", stdin=b"a = 2\n").stdout.decode().strip()
    index = {"GIT_INDEX_FILE": str(work.parent / "index")}
    git.run("read-tree", git.base, extra_env=index)
    git.run("update-index", "--add", "--cacheinfo", f"100644,{blob},a.py", extra_env=index)
    new_tree = git.run("write-tree", extra_env=index).stdout.decode().strip()
    sha = git.run("commit-tree", new_tree, "-p", git.base, "-m", "fix", extra_env=GIT).stdout.decode().strip()
    push(git, Commit("hotfix/x", sha, "main"), None, Incident("x"), "t@t")
    assert _git(origin, "rev-parse", "hotfix/x") == sha  # the real origin, not pushurl or insteadOf's target
    assert not trap.exists(), trap.read_text()  # no fsmonitor, hook, pager, filter, textconv, helper, pack program
    assert not (work.parent / "elsewhere.git" / "refs" / "heads" / "hotfix").exists()


def test_the_token_is_a_header_for_https_on_the_github_host_only(tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a").write_text("a\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "a")
    _git(tmp_path, "remote", "add", "origin", "https://github.example/acme/svc.git")
    seen_argv: list[list[str]] = []
    real_run = subprocess.run

    def spy(argv, *args, **kwargs):
        seen_argv.append(list(argv))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    git = Git.open(tmp_path, {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, "https://github.example")
    token = git.token_for_origin("ghs_sekrit0123456789")
    header = git.run("config", "--get", "http.extraHeader", token=token).stdout.decode().strip()
    scheme, value = header.split(": ", 1)[1].split(" ", 1)
    assert scheme == "basic" and base64.b64decode(value).decode() == "x-access-token:ghs_sekrit0123456789"
    assert not any("ghs_sekrit" in part for argv in seen_argv for part in argv)
    assert git.run("config", "--get", "http.extraHeader", check=False).returncode == 1  # only when asked
    assert git.out("config", "--get", "core.hooksPath") == "/dev/null"
    elsewhere = Git.open(tmp_path, {"PATH": os.environ["PATH"]}, "https://github.com")
    with pytest.raises(GitError, match="not the GitHub host"):
        elsewhere.token_for_origin("ghs_sekrit0123456789")


def test_workspace_drift_names_files_that_are_not_base_plus_the_vetted_change(tmp_path):
    _commit(tmp_path, {"a.py": "a\n", "b.py": "b\n"})
    git = Git.open(tmp_path, {"PATH": os.environ["PATH"]})
    assert blob_sha(b"a\n") == git.tree_entries()["a.py"][1]
    (tmp_path / "a.py").write_text("vetted\n")
    assert workspace_drift(git, tmp_path, {"a.py": "vetted\n"}) == []
    (tmp_path / "b.py").write_text("changed behind our back\n")
    (tmp_path / "c.py").write_text("new\n")
    assert workspace_drift(git, tmp_path, {"a.py": "vetted\n", "c.py": None}) == ["b.py", "c.py"]


def test_an_origin_that_git_would_read_as_an_option_is_refused(tmp_path):
    _commit(tmp_path, {"a": "a\n"})
    _git(tmp_path, "config", "remote.origin.url", f"--upload-pack=touch {tmp_path}/pwned;false")
    git = Git.open(tmp_path, {"PATH": os.environ["PATH"]})
    with pytest.raises(GitError, match="not a repository URL"):
        git.token_for_origin(None)
    from remediate.deliver.delivery import _remote_sha
    with pytest.raises(GitError):
        _remote_sha(git, "refs/heads/x", None)
    assert not (tmp_path / "pwned").exists()


def test_the_culprit_commit_shows_the_suspect_files_patch_and_names_the_rest(tmp_path):
    _commit(tmp_path, {"app.py": "x = 1\n", "vendored.js": "a\n"}, "base")
    _commit(tmp_path, {"app.py": "x = 2\n", "vendored.js": "b\n" * 500, "CHANGELOG": "changed\n"}, "the culprit")
    git = Git.open(tmp_path, {"PATH": os.environ["PATH"]})
    culprit = _git(tmp_path, "rev-parse", "HEAD")
    narrow = git.show_commit(culprit, paths=["app.py"])
    assert "the culprit" in narrow and "+x = 2" in narrow and "+b" not in narrow
    assert "[the commit also changes 2 other file(s), not shown: CHANGELOG, vendored.js]" in narrow
    whole = git.show_commit(culprit)
    assert "+b" in whole and "+x = 2" in whole and "other file(s)" not in whole


def test_what_the_base_commit_holds_is_read_once_and_a_copy_on_another_base_reads_its_own(tmp_path):
    from dataclasses import replace

    work = tmp_path / "w"
    first = _commit(work, {"a.py": "a = 1\n"}, "one")
    _commit(work, {"a.py": "a = 2\n", "b.py": "b = 1\n"}, "two")
    git = Git.open(work, {**os.environ, **GIT})
    assert git.base_file("a.py") == "a = 2\n" and git.tracked_files() == ["a.py", "b.py"]
    calls = []
    real = git.run
    object.__setattr__(git, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert git.base_file("a.py") == "a = 2\n" and git.tracked_files() == ["a.py", "b.py"] and calls == []
    older = replace(git, base=first)
    assert older.base_file("a.py") == "a = 1\n" and older.tracked_files() == ["a.py"]


def _raw_tree(work: Path, entries: list[tuple[str, str, str]]) -> str:
    """A tree object as given, even one git's own tools would refuse to make (`hash-object --literally`)."""
    data = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries)
    done = subprocess.run(["git", "hash-object", "--literally", "-t", "tree", "-w", "--stdin"], cwd=work,
                          input=data, env={**os.environ, **GIT}, check=True, capture_output=True)
    return done.stdout.decode().strip()


@pytest.mark.parametrize("shape", ["through a link", "dot-dot"])
def test_a_crafted_base_commit_cannot_make_us_write_outside_the_copy(tmp_path, shape):
    """Found by an attack: a tree with a link `a -> <outside>` and a tree `a/x`, or an entry `..`, had root write
    outside the sandbox copy when it was made."""
    work, outside, dest = tmp_path / "w", tmp_path / "outside", tmp_path / "copy"
    outside.mkdir()
    dest.mkdir()
    _git(tmp_path, "init", "-q", "-b", "main", str(work))
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=work, input=b"pwned\n",
                          env={**os.environ, **GIT}, check=True, capture_output=True).stdout.decode().strip()
    link = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=work, input=str(outside).encode(),
                          env={**os.environ, **GIT}, check=True, capture_output=True).stdout.decode().strip()
    inner = _raw_tree(work, [("100644", "x", blob)])
    top = _raw_tree(work, [("120000", "a", link), ("40000", "a", inner)]) if shape == "through a link" else \
        _raw_tree(work, [("40000", "..", inner)])
    commit = subprocess.run(["git", "commit-tree", top, "-m", "crafted"], cwd=work, env={**os.environ, **GIT},
                            check=True, capture_output=True).stdout.decode().strip()
    _git(work, "update-ref", "HEAD", commit)
    git = Git.open(work, {**os.environ, **GIT})
    with pytest.raises(GitError, match="base commit has"):
        git.materialize(dest)
    assert list(outside.iterdir()) == [] and not (tmp_path / "x").exists()
