"""Where code the change can make run is run: tests, the regression proof, tests.setup, the coverage-map
command and run_command. It is as untrusted as the model, so it gets

- a disposable copy of the tree (no `.git`), never the workspace we deliver from;
- another user when we are root (`remediate-sandbox` from the image, else a dedicated unassigned uid), with
  no new privileges and no capabilities: it cannot read our environment, memory or files, and the
  workspace, HOME, RUNNER_TEMP and the runner's file-command folders are closed to it while it runs;
- a HOME and TMPDIR of its own for each run, no stdin, its output captured (never our stdout), a
  scrubbed environment;
- an end: when the command exits or times out, every process it started is killed, daemons and `setsid`
  children included (a sweep of the sandbox user's processes, and this process as child subreaper).

Where we cannot switch user (a local run as a normal user), `isolation` says so and the other layers hold.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import pwd
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from remediate.errors import UserError
from remediate.gitops import Git, workspace_drift
from remediate.outcome import Failure, Reason
from remediate.processes import Finished
from remediate.run import Setup
from remediate.secrets import scrubbed_env

SANDBOX_USER = "remediate-sandbox"
# Used when the image's user does not exist (root outside the image): an id no distribution assigns.
FALLBACK_UID = 64_999
MAX_OUTPUT_BYTES = 1_000_000
MAX_FILE_BYTES = 2_000_000  # a file a command makes that is larger is not taken as a change
MAX_PROCESSES = 512  # processes the sandbox user may have at once (RLIMIT_NPROC)
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Identity:
    uid: int | None  # None: the command runs as we do
    gid: int | None
    name: str

    @property
    def switched(self) -> bool:
        return self.uid is not None


def sandbox_identity() -> Identity:
    """The image's sandbox user; REMEDIATE_SANDBOX_UID names another one (runs sharing a host each need their own:
    the sweep at the end of a command ends every process of that user)."""
    if os.geteuid() != 0:
        return Identity(None, None, pwd.getpwuid(os.geteuid()).pw_name)
    chosen = os.environ.get("REMEDIATE_SANDBOX_UID", "")
    if chosen.isdigit() and int(chosen) > 0 and int(chosen) != os.geteuid():
        return Identity(int(chosen), int(chosen), SANDBOX_USER)
    try:
        entry = pwd.getpwnam(SANDBOX_USER)
        return Identity(entry.pw_uid, entry.pw_gid, SANDBOX_USER)
    except KeyError:
        return Identity(FALLBACK_UID, FALLBACK_UID, SANDBOX_USER)


def _become_subreaper() -> bool:
    """Orphans of sandboxed processes (a `setsid` daemon whose parent exited) become our children, so they
    can be found and ended; without it they would belong to init."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> set[int]:
    """Our direct children, from /proc."""
    me = os.getpid()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) == me:
                found.add(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _exited(pid: int, timeout_s: float) -> bool:
    """Wait for our child to exit without reaping it (so its pid and process group stay ours); False on timeout.
    A pidfd wakes us the moment it exits; without one (an old kernel), we poll."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return _polled(pid, timeout_s)
    try:
        waiter = select.poll()
        waiter.register(fd, select.POLLIN)
        return bool(waiter.poll(max(timeout_s, 0) * 1000))
    finally:
        os.close(fd)


def _polled(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, 0.05)


def _kill_if_owned(pid: int, uid: int) -> None:
    """SIGKILL `pid` only if it is still a process of `uid`: the pidfd pins which process is meant, so a pid
    reused by another process between our look and the signal is never hit."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            owner = next((int(line.split()[1]) for line in handle if line.startswith("Uid:")), None)
        if owner == uid:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except (OSError, ValueError):
        pass
    finally:
        os.close(fd)


_KILL_ALL = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\n"


def _killer_python() -> str:
    """An interpreter the sandbox user may start, to send `kill(-1)` as that user."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if candidate and os.access(candidate, os.X_OK) and _reachable_by_others(candidate):
            return candidate
    return sys.executable


def _reachable_by_others(path: str) -> bool:
    current = Path(path).resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [*current.parents, current])


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True  # gone


class SandboxBreach(Failure):
    """The sandbox could not be kept or ended as it must: the run stops rather than go on without it."""

    reason_code = Reason.INTERNAL_ERROR


def _processes_of(uid: int) -> list[int]:
    return _processes_of_uid_among((int(e.name) for e in os.scandir("/proc") if e.name.isdigit()), uid)


def _processes_of_uid_among(candidates: Iterable[int], uid: int) -> list[int]:
    pids = []
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(pid)
                        break
        except OSError:
            continue
    return pids


@dataclass
class Sandbox:
    """One per run: a private root for the copies, the identity, and the folders closed while code runs."""

    environ: Mapping[str, str]  # already scrubbed: what a sandboxed process may see
    closed: Sequence[Path] = ()  # folders the sandbox user must not enter (workspace, HOME, runner files)
    identity: Identity = field(default_factory=sandbox_identity)
    root: Path = field(init=False)
    deps: Path = field(init=False)  # tests.setup installs here (PIP_TARGET); root's and read-only otherwise
    git: Git | None = None  # the base commit every `tree` is made from
    dirty_at_start: tuple[str, ...] = ()  # tracked files the checkout had changed before the run
    hidden: Sequence[str] = ()  # guardrails.sensitive_files: left out of every tree, so no test can print them
    subreaper: bool = field(init=False, default=False)
    _breached: bool = field(init=False, default=False)
    # Sandboxed commands run one at a time, or several `shared` ones together; the sweep of the user and the
    # reopening of the closed folders wait for the last of them.
    _state: threading.Condition = field(init=False, default_factory=threading.Condition)
    _active: int = field(init=False, default=0)
    _sharing: bool = field(init=False, default=False)
    _session: contextlib.ExitStack | None = field(init=False, default=None)
    _children_before: set[int] = field(init=False, default_factory=set)
    _swept: bool = field(init=False, default=False)  # the session's end already done, and no run came in since

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="remediate-sandbox-"))
        os.chmod(self.root, 0o711)  # the sandbox user may enter its own copies, not list the others
        self.deps = self.root / "deps"
        self.deps.mkdir(mode=0o755)
        self.subreaper = _become_subreaper()
        for folder in self.closed:
            if self.identity.switched and folder.stat().st_uid == self.identity.uid:
                raise SandboxBreach(f"the sandbox uid {self.identity.uid} owns {folder}: closing it would not keep "
                                    "the sandbox out (choose another REMEDIATE_SANDBOX_UID)")

    def probe(self, program: str) -> None:
        """Give up the user switch, saying why, when the sandbox user cannot start the test program (an
        interpreter under a folder only we may enter, as on a developer's machine)."""
        if not self.identity.switched:
            return
        tree = self.scratch()
        try:
            done = self.run([program, "--version"], tree, 60)
        finally:
            self.discard(tree)
        if done.start_error or done.exit_code in (126, 127) or "Permission denied" in done.output:
            said = (done.start_error or done.output)[:200].strip()
            # As root, running the change's code as ourselves would hand it our environment: refuse instead.
            raise UserError(f"the sandbox user {self.identity.name} cannot start {program!r} ({said})",
                            field="tests.command", hint="use a test program every user may run (not one under a "
                            "folder only root may enter, such as pyenv's under /root)")

    # What the report says about it ------------------------------------------------------------------
    def isolation(self) -> dict[str, object]:
        layers = ["disposable copy of the tree without .git", "own HOME and TMPDIR per run", "no stdin",
                  "output captured", "scrubbed environment", "process group killed at the end"]
        if self.subreaper:
            layers.append("orphaned processes ended (child subreaper)")
        missing = []
        if self.identity.switched:
            layers += [f"runs as {self.identity.name} (uid {self.identity.uid}), no new privileges, no capabilities",
                       "every process of that user killed at the end",
                       "workspace, HOME and runner files closed to it while it runs"]
        else:
            why = "not root: cannot switch user"
            missing = [f"runs as {self.identity.name}, the same user as remediate ({why}), so it could read this "
                       "process's environment and files, and the workspace is not closed to it"]
        return {"user": self.identity.name, "uid": self.identity.uid, "switched_user": self.identity.switched,
                "layers": layers, "missing": missing}

    # Trees --------------------------------------------------------------------------------------------
    def tree(self, overlay: Mapping[str, str | None] = {}) -> Path:
        """The base commit's tracked files (nothing untracked or ignored that earlier steps left in the
        checkout, such as credentials), with `overlay` written over them, owned by the sandbox user."""
        assert self.git is not None
        tree = Path(tempfile.mkdtemp(prefix="tree-", dir=self.root))
        self.git.materialize(tree)
        if self.hidden:
            spec = pathspec.GitIgnoreSpec.from_lines(self.hidden)
            overlay = {**{path: None for path in self.git.tracked_files() if spec.match_file(path)}, **overlay}
        return self._finish(tree, overlay)

    def copy(self, source: Path, overlay: Mapping[str, str | None] = {}) -> Path:
        """A copy of the folder `source` without `.git`, with `overlay` written over it, owned by the sandbox
        user (for a folder that is not a checkout; a run uses `tree`)."""
        tree = Path(tempfile.mkdtemp(prefix="tree-", dir=self.root))
        shutil.copytree(source, tree, symlinks=True, dirs_exist_ok=True,
                        ignore=lambda folder, names: [".git"] if Path(folder) == source else [])
        return self._finish(tree, overlay)

    def _finish(self, tree: Path, overlay: Mapping[str, str | None]) -> Path:
        for path, content in overlay.items():
            target = tree / path
            if content is None:
                if target.is_file() or target.is_symlink():
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            target.write_text(content, encoding="utf-8", newline="")
        self._own(tree)
        return tree

    def scratch(self) -> Path:
        """An empty folder the sandboxed command may write (a JUnit report, say)."""
        folder = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.root))
        self._own(folder)
        return folder

    def discard(self, tree: Path) -> None:
        """Deleted with `rm -rf` (iterative: a tree nested 10,000 folders deep is no recursion limit)."""
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(tree)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=300)

    def open_deps(self) -> None:
        """For tests.setup only: the dependency folder becomes the sandbox user's, until `freeze_deps`."""
        self._own(self.deps)

    def freeze_deps(self) -> None:
        """After tests.setup: what it installed stays readable, and no later sandboxed run can change it. Safe to
        walk as root: no process of the sandbox user is left to swap a folder for a link meanwhile."""
        if not self.identity.switched:
            return
        for folder, dirs, files in os.walk(self.deps):
            for name in [*dirs, *files]:
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    os.lchown(path, 0, 0)
                    if not os.path.islink(path):
                        os.chmod(path, 0o755 if os.path.isdir(path) else (0o755 if os.stat(path).st_mode & 0o100
                                                                           else 0o644))
        os.chown(self.deps, 0, 0)
        os.chmod(self.deps, 0o755)

    # Running ------------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], cwd: Path, timeout_s: float,
            extra_env: Mapping[str, str] | None = None, stdin: bytes | None = None,
            stderr_apart: bool = False, shared: bool = False) -> Finished:
        """Run `argv` in `cwd` (a tree from `copy`), bounded; nothing it started outlives the call. `stdin` is
        given from a private file (no pipe to block on); `stderr_apart` keeps stderr out of `output`. A `shared`
        run may overlap other shared ones (the regression proof beside a test run, each on its own copy): its
        process group ends with it, and everything else the user started ends with the last of them."""
        self._enter(shared)
        try:
            scratch = Path(tempfile.mkdtemp(prefix="run-", dir=self.root))
            home, tmp = scratch / "home", scratch / "tmp"
            for folder in (home, tmp):
                folder.mkdir()
            self._own(scratch)
            env = {**self.environ, **(extra_env or {}), "HOME": str(home), "TMPDIR": str(tmp),
                   "USER": self.identity.name, "LOGNAME": self.identity.name, "REMEDIATE_DEPS": str(self.deps)}
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.deps), env.get("PYTHONPATH", "")) if p)
            try:
                return self._run(list(argv), cwd, env, timeout_s, stdin, stderr_apart)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        finally:
            self._leave()

    def _enter(self, shared: bool) -> None:
        """Wait for the sandbox to be free (or running shared commands, for a shared one); the first in closes
        the folders the user must not enter and notes our children, to end the ones the session adds."""
        with self._state:
            while self._active and not (shared and self._sharing):
                self._state.wait()
            if not self._active:
                session = contextlib.ExitStack()
                try:
                    session.enter_context(self._closed())
                    if self.identity.switched:
                        self._reap()
                except BaseException:
                    session.close()
                    self._state.notify_all()
                    raise
                self._session, self._sharing = session, shared
                self._children_before = _children() if self.subreaper else set()
            self._active += 1
            self._swept = False

    def _leave(self) -> None:
        """The last one out ends every process the user has left, then reopens the closed folders."""
        with self._state:
            self._active -= 1
            if self._active:
                return
            try:
                if not self._swept:
                    self._end_session()
            finally:
                session, self._session = self._session, None
                if session is not None:
                    session.close()
                self._state.notify_all()

    def _command(self, argv: list[str]) -> tuple[list[str], dict[str, object]]:
        if not self.identity.switched:
            return argv, {}
        setpriv, prlimit = shutil.which("setpriv"), shutil.which("prlimit")
        # A fork bomb of the sandbox user must not take the pids the run itself needs (git, the sweep).
        limit = [prlimit, f"--nproc={MAX_PROCESSES}:{MAX_PROCESSES}", "--"] if prlimit else []
        if setpriv:
            return [*limit, setpriv, f"--reuid={self.identity.uid}", f"--regid={self.identity.gid}",
                    "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--", *argv], {}
        return [*limit, *argv], {"user": self.identity.uid, "group": self.identity.gid, "extra_groups": []}

    def _run(self, argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float, stdin: bytes | None = None,
             stderr_apart: bool = False) -> Finished:
        command, switch = self._command(argv)
        with contextlib.ExitStack() as stack:
            given: Any = subprocess.DEVNULL
            if stdin is not None:
                given = stack.enter_context(tempfile.TemporaryFile(dir=self.root))
                given.write(stdin)
                given.seek(0)
            try:
                proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=given, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT,
                                        start_new_session=True, close_fds=True,
                                        **switch)  # type: ignore[call-overload]
            except (OSError, ValueError) as exc:  # ValueError: a NUL in an argument or a variable
                return Finished(None, "", False, f"could not start {argv[0]!r}: {exc}")
        streams = [proc.stdout, *([proc.stderr] if stderr_apart else [])]
        chunks: list[list[bytes]] = [[] for _ in streams]
        readers = [threading.Thread(target=_drain, args=(stream, kept), daemon=True)
                   for stream, kept in zip(streams, chunks, strict=True)]
        for reader in readers:
            reader.start()
        timed_out = not _exited(proc.pid, timeout_s)
        self._end(proc)
        with self._state:
            if self._active == 1:  # alone: end what it left now, so no survivor holds its output open
                self._end_session()
                self._swept = True
        for reader in readers:
            reader.join(timeout=5)  # a survivor holding the pipe cannot hold us: everything was killed
        output, *rest = (b"".join(kept).decode("utf-8", errors="replace") for kept in chunks)
        return Finished(proc.returncode, output, timed_out, stderr=rest[0] if rest else "")

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        # The leader is not reaped yet (a zombie keeps its pid and group id): the group killed is its own. The
        # leader of a session cannot leave its group, so this ends it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def _end_session(self) -> None:
        """Nothing a sandboxed command started outlives the session: every process of the user, and what became
        our children meanwhile (orphans reparented to us as subreaper)."""
        if self.identity.switched:
            self._sweep_user()
            self._reap()  # zombies must not use up the user's cap
        if self.subreaper:
            for pid in _children() - self._children_before:  # ours until reaped: no pid here is another's
                if not self._orphan(pid):
                    continue
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, 0)

    def _orphan(self, pid: int) -> bool:
        """Whether a child of ours is something a sandboxed command left (reparented to us as subreaper), not a
        process another thread of ours started meanwhile (git making the next copy, `rm` discarding one): those
        are in our process group (and, when we switch user, not the sandbox user's)."""
        try:
            if os.getpgid(pid) == os.getpgrp():
                return False
        except ProcessLookupError:
            return False
        return not self.identity.switched or pid in _processes_of_uid_among([pid], self.identity.uid)

    def _reap(self) -> None:
        """Reap the sandbox user's zombies that are our children (orphans reparented to us as subreaper)."""
        assert self.identity.uid is not None
        for _ in range(3):
            zombies = [p for p in _processes_of(self.identity.uid) if _is_zombie(p)]
            if not zombies:
                return
            for pid in zombies:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)

    def _sweep_user(self) -> None:
        """Until the sandbox user has no live process left: `kill(-1, SIGKILL)` sent *as that user* (the kernel
        then reaches every process of it at once, one forking and hopping sessions included), and its zombies
        that became ours reaped. A user that cannot be emptied is a breach: the run stops, and the closed
        folders stay closed."""
        assert self.identity.uid is not None
        # Not under the process cap the user's own commands get: the user may be at it (zombies count), and the
        # killer must still start.
        killer = [shutil.which("setpriv") or "setpriv", f"--reuid={self.identity.uid}", f"--regid={self.identity.gid}",
                  "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--", _killer_python(), "-I", "-S", "-c",
                  _KILL_ALL]
        deadline = time.monotonic() + 10
        quiet = 0  # consecutive scans that found nothing live: one scan can miss a pid made while it ran
        while True:
            remaining = [p for p in _processes_of(self.identity.uid) if p != os.getpid()]
            live = [p for p in remaining if not _is_zombie(p)]
            for pid in remaining:
                if pid not in live:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(pid, os.WNOHANG)  # ours (as subreaper) or not ours, then no effect
            if not live:
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0
            if time.monotonic() > deadline:
                self._breached = True
                raise SandboxBreach(f"{len(live)} process(es) of the sandbox user could not be ended")
            # kill(-1) as the user, every pass (a scan that saw nothing may have missed a fork): the kernel reaches
            # all of the user's processes at once, and a fork racing it fails.
            subprocess.run(killer, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False, timeout=30)
            for pid in live:  # covers a killer that could not start
                _kill_if_owned(pid, self.identity.uid)

    @contextlib.contextmanager
    def _closed(self) -> Iterable[None]:
        """Take away what 'other' users may do in the folders the sandbox user must not enter; put it back."""
        changed: list[tuple[Path, int]] = []
        try:
            if self.identity.switched:
                for folder in self.closed:
                    mode = stat.S_IMODE(folder.stat().st_mode)
                    if mode & 0o007:
                        with contextlib.suppress(OSError):
                            os.chmod(folder, mode & ~0o007)
                        changed.append((folder, mode))
                    if stat.S_IMODE(folder.stat().st_mode) & 0o007:  # an immutable folder, a read-only mount
                        raise SandboxBreach(f"{folder} could not be closed to the sandbox user; nothing was run")
            yield
        finally:
            if not self._breached:  # a survivor may still be running: what was closed stays closed
                for folder, mode in changed:
                    with contextlib.suppress(OSError):
                        os.chmod(folder, mode)

    def _own(self, path: Path) -> None:
        if not self.identity.switched:
            return
        uid, gid = self.identity.uid, self.identity.gid
        assert uid is not None and gid is not None
        # Deepest first, the folder itself last: a folder becomes the sandbox user's only once we are done inside
        # it, so a sandboxed process running meanwhile (the proof beside a test run) can never swap a folder we
        # are about to walk for a link out of the tree.
        for folder, dirs, files in os.walk(path, topdown=False):
            for name in [*files, *dirs]:
                with contextlib.suppress(OSError):
                    os.lchown(os.path.join(folder, name), uid, gid)
        os.lchown(path, uid, gid)

    def close(self) -> None:
        self.discard(self.root)


def _drain(stream: object, chunks: list[bytes]) -> None:
    """Read a pipe to its end, keeping the last MAX_OUTPUT_BYTES."""
    size = 0
    read = stream.read1 if hasattr(stream, "read1") else stream.read  # type: ignore[attr-defined]
    while True:
        block = read(65536)
        if not block:
            break
        chunks.append(block)
        size += len(block)
        while size > MAX_OUTPUT_BYTES and len(chunks) > 1:
            size -= len(chunks.pop(0))


def snapshot(tree: Path) -> dict[str, str]:
    """Every file and link under `tree`, by relative path, with a digest of what it is. Walked with a stack (no
    recursion limit however deep), never through a link; a name that is not UTF-8 is recorded as unreadable."""
    found: dict[str, str] = {}
    stack = [""]
    while stack:
        relative_dir = stack.pop()
        try:
            entries = list(os.scandir(tree / relative_dir if relative_dir else tree))
        except OSError:
            found[relative_dir or "."] = "special:unreadable"
            continue
        for entry in entries:
            relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
            try:
                relative.encode("utf-8")
                info = entry.stat(follow_symlinks=False)
            except (UnicodeEncodeError, OSError):
                found[relative.encode("utf-8", "replace").decode()] = "special:unreadable"
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(relative)
            elif stat.S_ISLNK(info.st_mode):
                try:
                    found[relative] = "link:" + os.readlink(entry.path)
                except OSError:
                    found[relative] = "special:unreadable"
            elif not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                found[relative] = f"special:{info.st_mode}:{info.st_size}:{info.st_mtime_ns}"
            else:
                try:
                    found[relative] = hashlib.sha1(_read_regular(entry.path)).hexdigest()
                except OSError:
                    found[relative] = "special:unreadable"
    return found


def _read_regular(path: str) -> bytes:
    """A regular file's bytes, never through a link (O_NOFOLLOW) and never blocking on a FIFO swapped in."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            return handle.read(MAX_FILE_BYTES + 1)
    finally:
        if fd >= 0:
            os.close(fd)


def changes_since(tree: Path, before: Mapping[str, str],
                  skip: Callable[[str], bool] = lambda _: False) -> tuple[dict[str, str | None], list[str]]:
    """What changed under `tree` since `before`: text files with their content (None: deleted), and the paths
    that cannot be taken as a change (binary files, links)."""
    after = snapshot(tree)
    changed: dict[str, str | None] = {}
    refused: list[str] = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path) or skip(path):
            continue
        if path not in after:
            changed[path] = None
            continue
        if after[path].startswith(("link:", "special:")):
            refused.append(path)
            continue
        try:
            data = _read_regular(str(tree / path))
        except OSError:
            refused.append(path)
            continue
        if b"\x00" in data:
            refused.append(path)
            continue
        changed[path] = data.decode("utf-8", errors="replace")
    return changed, refused


def closed_folders(environ: Mapping[str, str], workspace: Path) -> list[Path]:
    """The folders a sandboxed process must not enter: the workspace, our HOME, RUNNER_TEMP, and the folders of
    the runner's files (event, outputs, env and path files, step summary)."""
    folders = [workspace, Path(environ.get("HOME") or Path.home()), *(
        Path(environ[name]) for name in ("RUNNER_TEMP",) if environ.get(name))]
    for name in ("GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT", "GITHUB_STATE", "GITHUB_STEP_SUMMARY",
                 "GITHUB_EVENT_PATH"):
        if environ.get(name):
            folders.append(Path(environ[name]).parent)
    seen: list[Path] = []
    for folder in folders:
        resolved = folder.resolve()
        if resolved.is_dir() and resolved not in seen and resolved != Path("/") and str(resolved) != sys.prefix:
            seen.append(resolved)
    return seen


@contextlib.contextmanager
def for_setup(setup: Setup) -> Iterator[tuple[Sandbox, list[str]]]:
    """The run's sandbox, and what the run should warn about: it is closed when the run is done."""
    box = Sandbox(scrubbed_env(setup.environ, setup.config.tests.env), closed_folders(setup.environ, setup.repo),
                  git=setup.git, hidden=tuple(setup.config.guardrails.sensitive_files))
    try:
        box.probe(setup.config.tests.command[0] if setup.config.tests.command else "python")
        warnings = []
        box.dirty_at_start = tuple(workspace_drift(setup.git, setup.repo, {}))
        if box.dirty_at_start:
            warnings.append(f"the checkout has uncommitted changes to {len(box.dirty_at_start)} tracked file(s) "
                            f"({', '.join(box.dirty_at_start[:10])}); tests run on the committed content with the "
                            "vetted change, which is what is delivered")
        yield box, warnings
    finally:
        box.close()
