"""Git at the edge, obeying only us.

The workspace's `.git` is as untrusted as the repository: its config can name programs (fsmonitor, hooks,
pagers, filters, credential helpers, `uploadpack`/`receivepack`, `sshCommand`) and redirect URLs
(`insteadOf`, `pushurl`), and so can `~/.gitconfig`. So at the start of a run we read two facts from it,
the commit checked out and the origin URL, with every config that could run a program overridden, and from
then on every git command runs in a private bare repository with a config we wrote: the workspace's objects
are reachable through `objects/info/alternates` (read-only object access, no config), nothing else of its
`.git` is read. System and global config are off for every call, the token reaches git only as an
`http.extraHeader` in the environment of the one push, fetch or ls-remote that needs it, and only for an
https origin on the GitHub host.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from remediate.outcome import Failure, Reason

# Overrides for every call: what a config we did not write could make git run or ask.
_HARDENED = (("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false"), ("core.pager", "cat"),
             ("core.sshCommand", "false"), ("credential.helper", ""), ("core.askPass", ""),
             ("protocol.ext.allow", "never"), ("diff.external", ""), ("core.gitProxy", ""),
             ("http.proxy", ""), ("uploadpack.packObjectsHook", ""), ("gc.auto", "0"),
             ("maintenance.auto", "false"), ("advice.detachedHead", "false"))


class GitError(Failure):
    reason_code = Reason.GIT_FAILED


def _env(base: Mapping[str, str], config: Sequence[tuple[str, str]]) -> dict[str, str]:
    # Config through GIT_CONFIG_* keeps it off argv (a token there shows in `ps`) and out of files.
    env = {k: v for k, v in base.items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0",
                "GIT_ASKPASS": "", "SSH_ASKPASS": "", "GIT_PAGER": "cat", "GIT_EXTERNAL_DIFF": "",
                "GIT_OPTIONAL_LOCKS": "0", "GIT_CONFIG_COUNT": str(len(config))})
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
                 "GIT_INDEX_FILE"):
        if name in base:
            env[name] = base[name]
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _git(cwd: Path, env: dict[str, str], args: Sequence[str], stdin: bytes | None = None,
         check: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=300, check=False)
    if check and done.returncode != 0:
        message = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done


def _check_entry(path: str, written: set[str]) -> None:
    """A path of the base commit's tree, as plain git would check it out: relative, without `.`, `..` or empty
    parts, not below a file or link of the same tree (`written`: the paths before it), not twice. A commit
    crafted otherwise (`git hash-object --literally`) would have us write outside the copy, as root."""
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts) or ".git" in parts:
        raise GitError(f"the base commit has a path git would not check out: {path!r}")
    if any("/".join(parts[:i]) in written for i in range(1, len(parts) + 1)):
        raise GitError(f"the base commit has {path!r} twice, or below a file or link of its own")


def blob_sha(data: bytes) -> str:
    """The object id git gives a file with these bytes (no filters)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Git:
    workspace: Path
    env: Mapping[str, str]
    git_dir: Path  # the private bare repository every call after `open` runs in
    base: str  # the commit checked out when the run began: what every change is built on
    origin: str  # origin's URL as the checkout had it when the run began ("" when there is none)
    branch: str | None = None  # the branch checked out when the run began (None: a detached HEAD)
    github_host: str | None = None  # the only host a token is sent to
    # What the base commit holds, read once (a copy with another base, `replace(git, base=...)`, starts afresh).
    _files: dict[str, str | None] = field(default_factory=dict, init=False, compare=False, repr=False)
    _tracked: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def open(cls, workspace: Path, env: Mapping[str, str], github_server_url: str | None = None) -> Git:
        workspace = workspace.resolve()
        reading = _env(env, [("safe.directory", str(workspace)), *_HARDENED])
        head = _git(workspace, reading, ["rev-parse", "--verify", "-q", "HEAD^{commit}"], check=False)
        if head.returncode != 0:
            raise GitError(f"git rev-parse failed: {workspace} has no commit checked out")
        paths = _git(workspace, reading, ["rev-parse", "--path-format=absolute", "--git-path", "objects",
                                          "--git-path", "shallow"]).stdout.decode().split("\n")
        origin = _git(workspace, reading, ["config", "--get", "remote.origin.url"], check=False)
        branch = _git(workspace, reading, ["symbolic-ref", "--short", "-q", "HEAD"], check=False)
        private = Path(tempfile.mkdtemp(prefix="remediate-git-"))
        _git(private, _env(env, _HARDENED), ["init", "-q", "--bare", "--template=", str(private)])
        (private / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (private / "objects" / "info" / "alternates").write_text(paths[0].strip() + "\n", encoding="utf-8")
        if paths[1].strip() and Path(paths[1].strip()).is_file():
            shutil.copyfile(paths[1].strip(), private / "shallow")
        host = urlparse(github_server_url or "https://github.com").hostname
        return cls(workspace, env, private, head.stdout.decode().strip(), origin.stdout.decode().strip(),
                   branch.stdout.decode().strip() or None, host)

    def run(self, *args: str, check: bool = True, token: str | None = None, stdin: bytes | None = None,
            extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        config = list(_HARDENED)
        if token:
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            config.append(("http.extraHeader", f"AUTHORIZATION: basic {basic}"))
        env = _env({**self.env, **(extra_env or {})}, config)
        return _git(self.git_dir, env, ["--git-dir", str(self.git_dir), *args], stdin, check)

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode("utf-8", errors="replace").strip()

    def token_for_origin(self, token: str | None) -> str | None:
        """The token, when origin is an https URL on the GitHub host (GITHUB_SERVER_URL's, github.com without
        it); else None (a local path needs none, and a URL elsewhere must not get it). An origin git could read
        as an option is refused whatever the token."""
        if self.origin.startswith("-") or not self.origin:
            raise GitError(f"origin {self.origin!r} is not a repository URL")
        if not token:
            return None
        url = urlparse(self.origin)
        if url.scheme != "https":
            if url.scheme in ("http", "ssh", "git") or "@" in self.origin.split("/")[0]:
                raise GitError(f"origin {self.origin!r} is not an https URL: the token is sent only over https")
            return None
        if self.github_host and url.hostname != self.github_host:
            raise GitError(f"origin {url.hostname!r} is not the GitHub host {self.github_host!r}: "
                           "the token is not sent there")
        return token

    def tracked_files(self) -> list[str]:
        if self.base not in self._tracked:
            raw = self.run("ls-tree", "-r", "-z", "--name-only", "--full-tree", self.base).stdout
            self._tracked[self.base] = tuple(sorted(p for p in raw.decode("utf-8", errors="replace").split("\0")
                                                    if p))
        return list(self._tracked[self.base])

    def tree_entries(self, commit: str | None = None) -> dict[str, tuple[str, str]]:
        """path -> (mode, blob id) of every file in the commit's tree (the base by default)."""
        raw = self.run("ls-tree", "-r", "-z", "--full-tree", commit or self.base).stdout.decode("utf-8", "replace")
        entries = {}
        for record in raw.split("\0"):
            if "\t" in record:
                meta, path = record.split("\t", 1)
                mode, _, sha = meta.split(" ")
                entries[path] = (mode, sha)
        return entries

    def materialize(self, dest: Path) -> None:
        """Write the base commit's tracked files under `dest`: blobs with their modes, links as links; no
        submodule, nothing untracked. Content comes from the object store, with no filter or attribute applied."""
        entries = [(path, mode, sha) for path, (mode, sha) in self.tree_entries().items() if mode != "160000"]
        if not entries:
            return
        written: set[str] = set()
        for path, _, _ in entries:
            _check_entry(path, written)
            written.add(path)
        batch = "".join(f"{sha}\n" for _, _, sha in entries).encode()
        out = self.run("cat-file", "--batch", stdin=batch).stdout
        position = 0
        for path, mode, _ in entries:
            header_end = out.index(b"\n", position)
            size = int(out[position:header_end].split()[2])
            data = out[header_end + 1:header_end + 1 + size]
            position = header_end + 1 + size + 1
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if mode == "120000":
                os.symlink(data.decode("utf-8", "surrogateescape"), target)
                continue
            # Never through a link, never over what is there: a path is written once, where it says.
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o755 if mode == "100755" else 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(target, 0o755 if mode == "100755" else 0o644)

    def base_file(self, path: str) -> str | None:
        if path not in self._files:
            done = self.run("cat-file", "blob", f"{self.base}:{path}", check=False)
            self._files[path] = done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None
        return self._files[path]

    def show_commit(self, commit: str, max_chars: int = 8000, paths: Sequence[str] = ()) -> str | None:
        """The commit's message and stat, and its patch: of `paths` only when given (the suspect files), with a
        note naming the files left out."""
        spec = f"{commit}^{{commit}}"
        done = self.run("show", "--no-textconv", "--no-ext-diff", "--no-color", "--stat", "--patch",
                        "--format=commit %H%nAuthor: %an%nDate: %ad%n%n%s%n%n%b", spec, "--", *paths, check=False)
        if done.returncode != 0:
            return None
        text = done.stdout.decode("utf-8", errors="replace")
        if paths:
            names = self.run("show", "--no-textconv", "--no-ext-diff", "--format=", "--name-only", spec,
                             check=False).stdout.decode("utf-8", errors="replace").split()
            others = [n for n in names if n not in paths]
            if others:
                text += (f"\n[the commit also changes {len(others)} other file(s), not shown: "
                         f"{', '.join(others[:20])}]\n")
        return text if len(text) <= max_chars else text[:max_chars] + "\n[... commit truncated]"

    def close(self) -> None:
        shutil.rmtree(self.git_dir, ignore_errors=True)


def workspace_drift(git: Git, root: Path, vetted: Mapping[str, str | None]) -> list[str]:
    """Files of the checkout that differ from the base commit with the vetted change (path -> content, None:
    deleted) applied: nothing should write there but the workspace's own vetted writes, so any path here is
    worth a guardrail event."""
    expected = {path: None if text is None else text.encode("utf-8") for path, text in vetted.items()}
    drift = []
    for path, (mode, sha) in git.tree_entries().items():
        if path in expected or mode == "160000":  # vetted below; submodules are not files
            continue
        target = root / path
        try:
            data = os.readlink(target).encode() if mode == "120000" else target.read_bytes()
        except OSError:
            drift.append(path)
            continue
        if blob_sha(data) != sha:
            drift.append(path)
    for path, data in expected.items():
        target = root / path
        if data is None:
            if target.exists() or target.is_symlink():
                drift.append(path)
        elif target.is_symlink() or not target.is_file() or target.read_bytes() != data:
            drift.append(path)
    return sorted(drift)
