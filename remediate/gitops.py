"""Git at the edge: every call with `safe.directory`, a scrubbed environment, and no token on argv."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from remediate.outcome import Failure, Reason


class GitError(Failure):
    reason_code = Reason.GIT_FAILED


@dataclass(frozen=True)
class Git:
    repo: Path
    env: Mapping[str, str]

    def _env(self, extra_config: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
        # Config through GIT_CONFIG_* keeps it off argv (a token there shows in `ps`) and out of files.
        config = [("safe.directory", str(self.repo)), ("core.hooksPath", "/dev/null"), *extra_config]
        env = dict(self.env)
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        env["GIT_TERMINAL_PROMPT"] = "0"
        return env

    def run(self, *args: str, check: bool = True, token: str | None = None,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        extra = []
        if token:
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            extra.append(("http.extraHeader", f"AUTHORIZATION: basic {basic}"))
        done = subprocess.run(["git", *args], cwd=self.repo, env=self._env(extra), input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, timeout=300, check=False)
        if check and done.returncode != 0:
            message = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
        return done

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode("utf-8", errors="replace").strip()

    def tracked_files(self) -> list[str]:
        raw = self.run("ls-files", "-z").stdout.decode("utf-8", errors="replace")
        return sorted(p for p in raw.split("\0") if p)

    def dirty_files(self) -> list[str]:
        """Tracked files changed against HEAD and untracked files, ignored ones excluded."""
        raw = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames").stdout
        entries = raw.decode("utf-8", errors="replace").split("\0")
        return sorted(entry[3:] for entry in entries if len(entry) > 3)

    def head_file(self, path: str) -> str | None:
        done = self.run("show", f"HEAD:{path}", check=False)
        return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None

    def current_branch(self) -> str | None:
        """The branch checked out, or None on a detached HEAD."""
        done = self.run("symbolic-ref", "--short", "-q", "HEAD", check=False)
        return done.stdout.decode().strip() or None

    def head(self) -> str:
        return self.out("rev-parse", "HEAD")

    def show_commit(self, commit: str, max_chars: int = 8000) -> str | None:
        done = self.run("show", "--stat", "--patch", "--format=commit %H%nAuthor: %an%nDate: %ad%n%n%s%n%n%b",
                        f"{commit}^{{commit}}", "--", check=False)
        if done.returncode != 0:
            return None
        text = done.stdout.decode("utf-8", errors="replace")
        return text if len(text) <= max_chars else text[:max_chars] + "\n[... commit truncated]"
