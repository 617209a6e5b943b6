"""Child processes at the edge: own process group, no stdin, a given environment, a timeout that
kills the whole tree, output captured."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Finished:
    exit_code: int | None
    output: str
    timed_out: bool
    start_error: str | None = None
    stderr: str = ""  # only when asked for apart from the output (a hook's reason); else it is in `output`


def run_bounded(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float) -> Finished:
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return Finished(None, "", False, f"could not start {argv[0]!r}: {exc}")
    timed_out = False
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    return Finished(proc.returncode, output.decode("utf-8", errors="replace"), timed_out)
