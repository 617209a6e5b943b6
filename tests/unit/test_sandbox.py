"""The sandbox, with real processes: as root (this suite, CI, the container) the command runs as another user;
these tests fail rather than skip when it cannot, since that is the layer they prove."""

from __future__ import annotations

import os
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.harness import reachable_folder
from remediate.guard.sandbox import Identity, Sandbox, changes_since, closed_folders, snapshot

PY = "/usr/bin/python3"  # an interpreter every user may start (the venv's may live under /root)
SECRET = "ghs_sandboxsecret0123456789abcdef"


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Reachable by every user, as /github/workspace is."""
    with reachable_folder("sandbox-test-") as folder:
        yield folder


def _workspace(base: Path) -> Path:
    workspace = base / "workspace"
    (workspace / ".git").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / "app.py").write_text("x = 1\n")
    for path in (workspace, workspace / ".git"):
        os.chmod(path, 0o755)
    return workspace


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)  # in our environment, as in the action's
    box = Sandbox({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, [_workspace(tmp_path)])
    assert box.identity.switched == (os.geteuid() == 0)
    yield box
    box.close()


def _run(box: Sandbox, tree: Path, code: str, timeout: float = 60):
    return box.run([PY, "-c", code], tree, timeout)


def test_it_runs_as_another_user_that_cannot_read_our_environment_or_memory(sandbox, tmp_path):
    tree = sandbox.copy(tmp_path / "workspace")
    done = _run(sandbox, tree, f"""
import os
print("uid", os.getuid(), os.geteuid())
for target in ("/proc/{os.getpid()}/environ", "/proc/{os.getppid()}/environ", "/proc/{os.getpid()}/mem"):
    try:
        print(target, open(target, "rb").read(200))
    except OSError as exc:
        print(target, "denied", exc.errno)
print("token" , os.environ.get("GITHUB_TOKEN"))
print("status", open("/proc/self/status").read().split("CapEff:")[1].split()[0])
print("nnp", open("/proc/self/status").read().split("NoNewPrivs:")[1].split()[0])
""")
    assert done.exit_code == 0, done.output
    assert SECRET not in done.output
    assert f"uid {sandbox.identity.uid} {sandbox.identity.uid}" in done.output
    assert done.output.count("denied") == 3
    assert "token None" in done.output and "status 0000000000000000" in done.output and "nnp 1" in done.output


def test_the_copy_is_disposable_and_has_no_git(sandbox, tmp_path):
    workspace = tmp_path / "workspace"
    tree = sandbox.copy(workspace, {"app.py": "x = 2\n", "new.py": "n = 1\n"})
    assert not (tree / ".git").exists() and (tree / "app.py").read_text() == "x = 2\n"
    done = _run(sandbox, tree, "open('app.py', 'w').write('owned'); open('dropped.py', 'w').write('x')")
    assert done.exit_code == 0, done.output
    assert (workspace / "app.py").read_text() == "x = 1\n" and not (workspace / "dropped.py").exists()
    sandbox.discard(tree)
    assert not tree.exists()


PEEK = """
import os
for path in ("{workspace}", "{workspace}/app.py", "{workspace}/.git/config"):
    try:
        open(path).read() if os.path.isfile(path) else os.listdir(path)
        print(path, "open")
    except OSError as exc:
        print(path, "denied")
"""


def test_without_closing_the_workspace_would_be_readable(tmp_path):
    workspace = _workspace(tmp_path)
    box = Sandbox({"PATH": "/usr/bin:/bin"}, [])  # the control: nothing closed
    try:
        done = _run(box, box.copy(workspace), PEEK.format(workspace=workspace))
    finally:
        box.close()
    assert done.output.count(" open") == 3, done.output


def test_the_workspace_and_our_home_are_closed_while_it_runs_and_reopened_after(sandbox, tmp_path):
    workspace = tmp_path / "workspace"
    tree = sandbox.copy(workspace)
    done = _run(sandbox, tree, PEEK.format(workspace=workspace) + f"""
print("home", os.environ["HOME"] != "{Path.home()}", os.access(os.environ["HOME"], os.W_OK))
try:
    open("{workspace}/planted.py", "w")
except OSError:
    print("no write")
""")
    assert done.output.count("denied") == 3 and " open" not in done.output, done.output
    assert "home True True" in done.output and "no write" in done.output
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o755  # put back


def test_no_process_outlives_the_run_daemons_and_setsid_children_included(sandbox, tmp_path):
    tree = sandbox.copy(tmp_path / "workspace")
    pids = tree / "pids"
    done = _run(sandbox, tree, f"""
import os, subprocess, sys
# A daemon in a session of its own, a double-forked grandchild, and a child holding our stdout open.
a = subprocess.Popen(["{PY}", "-c", "import time; time.sleep(120)"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("{pids}.g", "w").write(str(os.getpid()))
        import time; time.sleep(120)
    os._exit(0)
b = subprocess.Popen(["{PY}", "-c", "import time; print('holding', flush=True); time.sleep(120)"])
open("{pids}", "w").write(f"{{a.pid}} {{b.pid}}")
print("parent exits")
""", timeout=60)
    assert not done.timed_out and "parent exits" in done.output
    for _ in range(50):  # the grandchild may still be writing its pid file when we look
        if Path(f"{pids}.g").exists():
            break
        time.sleep(0.05)
    survivors = [int(p) for p in [*pids.read_text().split(), Path(f"{pids}.g").read_text()]]
    alive = []
    for pid in survivors:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/status") as handle:
                if "State:\tZ" not in handle.read():
                    alive.append(pid)
        except (ProcessLookupError, FileNotFoundError):
            pass
    assert alive == []


def test_a_timeout_ends_everything(sandbox, tmp_path):
    tree = sandbox.copy(tmp_path / "workspace")
    done = _run(sandbox, tree, "import time; print('started', flush=True); time.sleep(60)", timeout=1)
    assert done.timed_out and "started" in done.output


def test_stdin_is_empty_and_output_is_captured_not_ours(sandbox, tmp_path, capfd):
    tree = sandbox.copy(tmp_path / "workspace")
    done = _run(sandbox, tree, "import sys; print(repr(sys.stdin.read())); print('::set-env name=X::y')")
    assert "''" in done.output and "::set-env" in done.output
    assert "::set-env" not in capfd.readouterr().out


def test_installed_dependencies_are_read_only_once_frozen(sandbox, tmp_path):
    tree = sandbox.copy(tmp_path / "workspace")
    # Without tests.setup the folder is never the sandbox user's: a test cannot plant a module for later runs.
    assert _run(sandbox, tree, f"open('{sandbox.deps}/sitecustomize.py', 'w')").exit_code != 0
    sandbox.open_deps()  # what tests.setup gets
    assert _run(sandbox, tree, f"open('{sandbox.deps}/dep.py', 'w').write('V = 1')").exit_code == 0
    sandbox.freeze_deps()
    done = _run(sandbox, tree, f"""
import dep; print("imported", dep.V)
try:
    open("{sandbox.deps}/dep.py", "w").write("V = 2")
except OSError:
    print("read-only")
try:
    open("{sandbox.deps}/sitecustomize.py", "w").write("")
except OSError:
    print("no new files")
""")
    assert "imported 1" in done.output and "read-only" in done.output and "no new files" in done.output


def test_changes_since_takes_text_and_refuses_links_and_special_files(tmp_path):
    (tmp_path / "a.py").write_text("a\n")
    before = snapshot(tmp_path)
    (tmp_path / "a.py").write_text("b\n")
    (tmp_path / "new.py").write_text("n\n")
    (tmp_path / "link").symlink_to("/etc/passwd")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "blob").write_bytes(b"\x00\x01")
    changed, refused = changes_since(tmp_path, before)
    assert changed == {"a.py": "b\n", "new.py": "n\n"} and refused == ["blob", "fifo", "link"]


def test_without_root_the_report_says_what_is_missing():
    box = Sandbox({}, [])
    box.identity = Identity(None, None, "dev")
    isolation = box.isolation()
    assert isolation["switched_user"] is False and "same user as remediate" in isolation["missing"][0]
    box.close()


def test_closed_folders_are_the_workspace_home_and_runner_files(tmp_path):
    for name in ("ws", "home", "temp", "cmds"):
        (tmp_path / name).mkdir()
    env = {"HOME": str(tmp_path / "home"), "RUNNER_TEMP": str(tmp_path / "temp"),
           "GITHUB_ENV": str(tmp_path / "cmds" / "env"), "GITHUB_OUTPUT": str(tmp_path / "cmds" / "out")}
    assert closed_folders(env, tmp_path / "ws") == [tmp_path / n for n in ("ws", "home", "temp", "cmds")]


def test_signals_from_the_sandbox_cannot_reach_us(sandbox, tmp_path):
    tree = sandbox.copy(tmp_path / "workspace")
    done = _run(sandbox, tree, f"""
import os, signal
try:
    os.kill({os.getpid()}, signal.SIGTERM)
except PermissionError:
    print("denied")
""")
    assert "denied" in done.output
    assert signal.getsignal(signal.SIGTERM) is not None  # and we are still here to say so


def test_a_fork_bomb_is_capped_and_swept(sandbox, tmp_path):
    tree = sandbox.copy(tmp_path / "workspace")
    done = _run(sandbox, tree, """
import os, time
made = 0
for _ in range(2000):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        made += 1
    except OSError:
        break
print("made", made, flush=True)
""", timeout=60)
    made = int(done.output.split("made ")[1].split()[0])
    assert 0 < made < 2000  # stopped by the process cap, not by the loop
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) == sandbox.identity.uid]


def _uid_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
    except (OSError, StopIteration):
        return None


def test_changes_since_walks_any_depth_and_refuses_names_that_are_not_utf8(tmp_path):
    before = snapshot(tmp_path)
    deep = str(tmp_path)
    for _ in range(1100):  # deeper than Python's recursion limit (made level by level: makedirs recurses)
        deep += "/d"
        os.mkdir(deep)
    Path(deep, "leaf.py").write_text("x\n")
    os.mkdir(os.fsencode(tmp_path) + b"/bad\xffname")
    changed, refused = changes_since(tmp_path, before)
    assert list(changed.values()) == ["x\n"] and next(iter(changed)).endswith("/d/leaf.py")
    assert len(refused) == 1 and "bad" in refused[0]


def test_a_process_hopping_sessions_does_not_outlive_the_run(sandbox, tmp_path):
    """fork, exit, setsid, again: a pid sweep always lags one hop behind; kill(-1) as the user does not."""
    tree = sandbox.copy(tmp_path / "workspace")
    beat = Path(tempfile.gettempdir()) / f"remediate-hop-{os.getpid()}"
    beat.unlink(missing_ok=True)
    done = _run(sandbox, tree, f"""
import os, time
if os.fork() == 0:
    os.setsid()
    end = time.time() + 20
    while time.time() < end:
        if os.fork():
            os._exit(0)  # the parent goes, the child hops on in a new session
        os.setsid()
        open("{beat}", "w").write(str(time.time()))
        time.sleep(0.003)
    os._exit(0)
time.sleep(0.5)
print("hopping", flush=True)
""", timeout=30)
    assert "hopping" in done.output
    left = [p for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) == sandbox.identity.uid]
    assert left == []
    last = beat.read_text() if beat.exists() else ""
    time.sleep(0.5)
    assert (beat.read_text() if beat.exists() else "") == last  # nothing beats any more
    beat.unlink(missing_ok=True)


def test_the_sandbox_refuses_to_run_as_root_when_its_user_cannot_start_the_program(tmp_path):
    from remediate.errors import UserError

    # As pyenv's python under /root: the program starts, and cannot read what it needs from a folder only root
    # may enter.
    hidden = tmp_path / "only-root"
    hidden.mkdir(mode=0o700)
    (hidden / "stdlib.py").write_text("")
    program = tmp_path / "python"
    program.write_text(f"#!/bin/sh\ncat {hidden}/stdlib.py\n")
    program.chmod(0o755)
    box = Sandbox({"PATH": "/usr/bin:/bin"}, [])
    try:
        with pytest.raises(UserError) as refused:
            box.probe(str(program))
    finally:
        box.close()
    assert refused.value.field == "tests.command"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return "State:\tZ" not in handle.read()
    except FileNotFoundError:
        return False


def test_shared_runs_overlap_and_the_last_one_out_ends_what_either_left(sandbox, tmp_path):
    import threading

    workspace = tmp_path / "workspace"
    trees = [sandbox.copy(workspace), sandbox.copy(workspace)]
    # Each notes when it ran; the first leaves a daemon behind and ends early, the second runs on.
    first = f"""
import os, subprocess, sys, time
print("start", time.time(), flush=True)
d = subprocess.Popen(["{PY}", "-c", "import time; time.sleep(120)"], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
open("daemon", "w").write(str(d.pid))
time.sleep(0.6)
print("end", time.time(), flush=True)
"""
    second = f"""
import time
print("start", time.time(), flush=True)
time.sleep(1.5)
print("reachable", __import__("os").access("{workspace}", __import__("os").R_OK))
print("end", time.time(), flush=True)
"""
    results: dict[int, object] = {}

    def go(index: int, code: str) -> None:
        results[index] = sandbox.run([PY, "-c", code], trees[index], 60, shared=True)

    threads = [threading.Thread(target=go, args=(0, first)), threading.Thread(target=go, args=(1, second))]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    daemon_seen = None
    for _ in range(40):  # while the second still runs, the first's daemon lives (the sweep waits for the last)
        if (trees[0] / "daemon").exists() and results.get(0) is not None:
            daemon_seen = _alive(int((trees[0] / "daemon").read_text()))
            break
        time.sleep(0.05)
    for thread in threads:
        thread.join()

    def times(done) -> tuple[float, float]:
        found = dict(line.split() for line in done.output.splitlines() if line.startswith(("start", "end")))
        return float(found["start"]), float(found["end"])

    (start0, end0), (start1, end1) = times(results[0]), times(results[1])
    assert start0 < start1 < end0 < end1  # they ran at the same time
    assert "reachable False" in results[1].output  # the workspace stayed closed after the first one ended
    assert results[1].exit_code == 0  # the first one's end did not end the second
    assert daemon_seen is True
    assert not _alive(int((trees[0] / "daemon").read_text()))  # ended with the last one out
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o755


def test_an_exclusive_run_waits_for_the_shared_ones_to_end(sandbox, tmp_path):
    import threading

    tree = sandbox.copy(tmp_path / "workspace")
    ended: list[float] = []

    def long_shared() -> None:
        sandbox.run([PY, "-c", "import time; time.sleep(1)"], tree, 60, shared=True)
        ended.append(time.time())

    thread = threading.Thread(target=long_shared)
    thread.start()
    time.sleep(0.2)
    done = _run(sandbox, tree, "import time; print(time.time())")
    thread.join()
    assert float(done.output.split()[-1]) >= ended[0] - 0.05  # it started only once the shared run had ended


OUR_CHILD_MEANWHILE = """
import subprocess, sys, threading, time
from remediate.guard.sandbox import Sandbox

box = Sandbox({"PATH": "/usr/bin:/bin"}, closed=[])
results = []


def ours():  # what the proof's thread does meanwhile: git making a copy, rm discarding one
    time.sleep(0.3)
    results.append(subprocess.run(["sleep", "1.5"]).returncode)


thread = threading.Thread(target=ours)
thread.start()
done = box.run(["/usr/bin/python3", "-c", "import time; time.sleep(1)"], box.scratch(), 30, shared=True)
thread.join()
box.close()
print("run", done.exit_code, "ours", results)
"""


def test_the_end_of_a_run_leaves_alone_the_processes_other_threads_of_ours_started():
    """Found by an attack: the subreaper's sweep took the proof thread's `rm` for an orphan of the sandbox and
    killed its process group, which is ours: remediate killed itself."""
    import subprocess
    import sys

    # In a session of its own: a regression kills its whole process group, which must not be this one.
    done = subprocess.run([sys.executable, "-c", OUR_CHILD_MEANWHILE], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert "run 0 ours [0]" in done.stdout


def test_a_tree_becomes_the_sandbox_user_s_from_the_deepest_folder_up(tmp_path, monkeypatch):
    """A sandboxed process may run while a tree is handed over (the proof beside a test run): a folder must
    become its own only once we are done inside it, or it could swap a folder we are about to walk for a link."""
    box = Sandbox({"PATH": "/usr/bin:/bin"}, [], identity=Identity(64_998, 64_998, "x"))
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f.py").write_text("x")
    (tree / "g.py").write_text("y")
    order: list[str] = []
    monkeypatch.setattr(os, "lchown", lambda path, uid, gid: order.append(os.path.relpath(path, tree)))
    box._own(tree)
    box.close()
    assert order[-1] == "."
    for path in ("a", "a/b"):
        inside = [p for p in order if p.startswith(path + "/")]
        assert inside and order.index(path) > max(order.index(p) for p in inside)
