"""What the GitHub runner provides, rebuilt on loopback: a checkout cloned from a bare origin with a
real fault-introducing commit, an MCP server process, an event file, file-command files, INPUT_* and
GITHUB_* variables, and the entrypoint run as a child process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "demo" / "sample_service"
FAULTY = "        self._audit_log: list[dict] = []\n"
FAULTY_USE = "            self._audit_log.append(message)\n"
# The sample service's tests need no pytest plugin; the suite's venv has several (hypothesis, cov, xdist), whose
# loading would double the cost of every test run the action makes. A job may set this too (docs/safety.md).
SAMPLE_TEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
GIT_ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "GIT_COMMITTER_NAME": "Dev",
           "GIT_COMMITTER_EMAIL": "dev@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@dataclass
class SampleRepo:
    workspace: Path
    origin: Path
    bug_commit: str

    def remote_file(self, branch: str, path: str) -> str | None:
        done = subprocess.run(["git", "show", f"{branch}:{path}"], cwd=self.origin, capture_output=True, text=True,
                              env={**os.environ, **GIT_ENV})
        return done.stdout if done.returncode == 0 else None

    def remote_branches(self) -> list[str]:
        out = git(self.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads")
        return sorted(out.split())

    def fresh_clone(self, path: Path) -> SampleRepo:
        """Another checkout of the same origin, as the next workflow run gets."""
        git(path.parent, "clone", "-q", str(self.origin), str(path))
        return SampleRepo(path, self.origin, self.bug_commit)

    def remote_log(self, branch: str) -> str:
        return git(self.origin, "log", "--format=%an <%ae>%n%B", "-1", branch)


def make_sample_repo(base: Path, config_text: str | None = None, extra_files: dict[str, str] | None = None,
                     symlinks: dict[str, str] | None = None) -> SampleRepo:
    """History: a healthy service, then the commit that introduced the leak; pushed to a bare origin
    and cloned into the workspace, as actions/checkout leaves it."""
    seed = base / "seed"
    shutil.copytree(SAMPLE, seed, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    if config_text is not None:
        (seed / ".remediate.yaml").write_text(config_text)
    for path, content in (extra_files or {}).items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(content)
    for path, target in (symlinks or {}).items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, seed / path)
    service = seed / "app" / "users" / "service.py"
    faulty = service.read_text()
    healthy = faulty.replace(FAULTY, "").replace(FAULTY_USE, "").replace(
        "        return self._audit_log[-limit:]", "        return []")
    service.write_text(healthy)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "user service: process profile updates")
    service.write_text(faulty)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "user service: keep an audit log of processed updates")
    bug = git(seed, "rev-parse", "HEAD")
    origin = base / "origin.git"
    git(base, "clone", "-q", "--bare", str(seed), str(origin))
    workspace = base / "workspace"
    git(base, "clone", "-q", str(origin), str(workspace))
    shutil.rmtree(seed)
    return SampleRepo(workspace, origin, bug)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class McpProcess:
    url: str
    token: str
    journal: Path
    process: subprocess.Popen[bytes]

    def calls(self) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def mcp_files(base: Path, logs: str, incident: dict[str, Any]) -> list[str]:
    """The incident server's data files, as its command-line arguments."""
    logs_file, journal, record = base / "incident-logs.txt", base / "mcp-journal.jsonl", base / "incident.json"
    logs_file.write_text(logs)
    record.write_text(json.dumps(incident))
    return ["--logs", str(logs_file), "--journal", str(journal), "--incident", str(record)]


def start_mcp(base: Path, logs: str, incident: dict[str, Any], token: str = "mcp-bridge-token-123456",
              transport: str = "http", port: int | None = None, forbidden_token: str | None = None) -> McpProcess:
    port = port or free_port()
    journal = base / "mcp-journal.jsonl"
    extra = ["--forbidden-token", forbidden_token] if forbidden_token else []
    process = subprocess.Popen([sys.executable, "-m", "peers.mcp_incident", "--transport", transport,
                                "--port", str(port), "--token", token, *extra, *mcp_files(base, logs, incident)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path = "/sse" if transport == "sse" else "/mcp"
    return listening(process, port, f"http://127.0.0.1:{port}{path}", token, journal, "MCP server")


def listening(process: subprocess.Popen[bytes], port: int, url: str, token: str, journal: Path,
              what: str) -> McpProcess:
    """The server child once it listens on `port` (20 s at most; its stderr when it exits first)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {process.stderr.read().decode() if process.stderr else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return McpProcess(url, token, journal, process)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not start listening within 20s")


@dataclass
class ActionRun:
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    report: dict[str, Any] | None
    report_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def parse_outputs(text: str) -> dict[str, str]:
    """The runner's reading of $GITHUB_OUTPUT: `name<<DELIM` heredocs and `name=value` lines."""
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            i += 1
            while lines[i] != delimiter:
                value.append(lines[i])
                i += 1
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value_text = line.split("=", 1)
            outputs[name] = value_text
        i += 1
    return outputs


def run_action(base: Path, workspace: Path, event_name: str, event: dict[str, Any], inputs: dict[str, str],
               env: dict[str, str], timeout: float = 180, in_process: bool = False) -> ActionRun:
    """Run entrypoint.py as the runner runs a container action's entrypoint: a child process with the runner's
    environment and files. With `in_process`, the entrypoint's own function is called here instead, with the
    same environment, files and peers: everything but the interpreter's start (the OTEL_* variables the
    OpenTelemetry SDK reads from the process are then this process's)."""
    commands = base / "_runner_file_commands"
    commands.mkdir(parents=True, exist_ok=True)
    output_file, summary_file = commands / "set_output", commands / "step_summary"
    output_file.write_text("")
    summary_file.write_text("")
    event_path = base / "event.json"
    event_path.write_text(json.dumps(event))
    runner_temp = base / "_temp"
    runner_temp.mkdir(exist_ok=True)
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
        "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(output_file),
        "GITHUB_STEP_SUMMARY": str(summary_file), "RUNNER_TEMP": str(runner_temp), "GITHUB_RUN_ID": "4242",
        "GITHUB_SERVER_URL": "https://github.example", "GITHUB_SHA": git(workspace, "rev-parse", "HEAD"),
        "GIT_CONFIG_GLOBAL": "/dev/null", "PYTHONPATH": str(ROOT), **SAMPLE_TEST_ENV,
        **{f"INPUT_{k.upper()}": v for k, v in inputs.items()}, **env,
    }
    for name in ("VIRTUAL_ENV", "REMEDIATE_SANDBOX_UID"):
        if os.environ.get(name) and name not in env:
            full_env[name] = os.environ[name]
    if in_process:
        done = _in_process(full_env)
    else:
        done = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=workspace, env=full_env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    outputs = parse_outputs(output_file.read_text())
    report_path = Path(outputs["report-path"]) if outputs.get("report-path") else None
    report = json.loads(report_path.read_text()) if report_path and report_path.exists() else None
    return ActionRun(done.returncode, done.stdout, done.stderr, outputs, summary_file.read_text(), report,
                     report_path, full_env)


def _in_process(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    from remediate.cli import main

    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["action"], environ)
    return subprocess.CompletedProcess(["entrypoint.py"], code, out.getvalue(), err.getvalue())


@contextmanager
def reachable_folder(prefix: str) -> Iterator[Path]:
    """A scratch folder every user may enter, as the runner's workspace and home are (pytest's own tmp_path
    lies under a 0700 folder, which would keep a sandbox user out whatever the sandbox does)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        subprocess.run(["rm", "-rf", "--", str(folder)], check=False)  # iterative: any depth
