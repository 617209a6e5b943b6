import base64
import os
import subprocess

from remediate.gitops import Git


def test_the_token_reaches_git_as_a_header_never_on_the_command_line(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    seen_argv: list[list[str]] = []
    real_run = subprocess.run

    def spy(argv, *args, **kwargs):
        seen_argv.append(list(argv))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    git = Git(tmp_path, {"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    header = git.run("config", "--get", "http.extraHeader", token="ghs_sekrit0123456789").stdout.decode().strip()
    scheme, value = header.split(": ", 1)[1].split(" ", 1)
    assert scheme == "basic" and base64.b64decode(value).decode() == "x-access-token:ghs_sekrit0123456789"
    assert not any("ghs_sekrit" in part for argv in seen_argv for part in argv)
    # safe.directory is set for every call, and hooks never run.
    assert git.out("config", "--get", "safe.directory") == str(tmp_path)
    assert git.out("config", "--get", "core.hooksPath") == "/dev/null"
    assert git.run("config", "--get", "http.extraHeader", check=False).returncode == 1  # only when asked


def test_dirty_files_and_head_content(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    git = Git(tmp_path, env)
    git.run("init", "-q")
    (tmp_path / "a.py").write_text("a\n")
    git.run("add", "a.py")
    git.run("commit", "-qm", "a")
    (tmp_path / "a.py").write_text("b\n")
    (tmp_path / "new dir").mkdir()
    (tmp_path / "new dir" / "n.py").write_text("n\n")
    assert git.dirty_files() == ["a.py", "new dir/n.py"]
    assert git.head_file("a.py") == "a\n" and git.head_file("missing.py") is None
