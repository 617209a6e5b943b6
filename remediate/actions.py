"""The GitHub Actions runner protocol: inputs, outputs, step summary, masks, annotations, groups."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

INPUT_NAMES = ("github-token", "config", "incident-id", "summary", "model", "budget-usd", "base-branch",
               "dry-run", "report-file", "suspect-files", "suspect-functions", "suspect-commit", "llm-base-url",
               "command", "proposal")


def read_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    """`INPUT_<NAME>` as the runner sets them: upper-cased, hyphens kept."""
    inputs = {}
    for name in INPUT_NAMES:
        value = environ.get(f"INPUT_{name.upper()}")
        if value is None:
            value = environ.get(f"INPUT_{name.upper().replace('-', '_')}")
        if value is not None and value.strip() != "":
            inputs[name] = value.strip()
    return inputs


class Runner:
    """Writes what the runner reads; outside Actions the same calls print plainly."""

    def __init__(self, environ: Mapping[str, str], stream: TextIO | None = None) -> None:
        self.environ = environ
        self.stream = stream or sys.stdout
        self.in_actions = environ.get("GITHUB_ACTIONS") == "true"

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def mask(self, secret: str | None) -> None:
        if secret and self.in_actions:
            for part in secret.splitlines():
                if part.strip():
                    self._print(f"::add-mask::{part}")

    def log(self, message: str) -> None:
        self._print(message)

    def error(self, message: str) -> None:
        self._print(f"::error::{_escape(message)}" if self.in_actions else f"error: {message}")

    def warning(self, message: str) -> None:
        self._print(f"::warning::{_escape(message)}" if self.in_actions else f"warning: {message}")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.in_actions:
            self._print(f"::group::{title}")
        else:
            self._print(f"== {title}")
        try:
            yield
        finally:
            if self.in_actions:
                self._print("::endgroup::")

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        path = self.environ.get("GITHUB_OUTPUT")
        if not path:
            return
        with open(path, "a", encoding="utf-8") as handle:
            for name, value in outputs.items():
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
                handle.write(f"{name}<<{delimiter}{os.linesep}{value}{os.linesep}{delimiter}{os.linesep}")

    def write_summary(self, markdown: str) -> None:
        path = self.environ.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(markdown + "\n")


def _escape(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


CONTAINER_HOME = Path("/github/home")


def report_location(environ: Mapping[str, str], incident_slug: str,
                    container_home: Path = CONTAINER_HOME) -> tuple[Path, str]:
    """Where to write the report (outside the repository, so it is never committed) and the path a later
    step of the job reads it at. In a container action RUNNER_TEMP names a host folder that is not
    mounted (actions/runner#1984); /github/home is, at RUNNER_TEMP/_github_home on the host."""
    name = Path("remediate") / f"report-{incident_slug}.json"
    runner_temp = environ.get("RUNNER_TEMP")
    if runner_temp and Path(runner_temp).is_dir():
        return Path(runner_temp) / name, str(Path(runner_temp) / name)
    if runner_temp and container_home.is_dir():
        return container_home / name, str(Path(runner_temp) / "_github_home" / name)
    base = Path(environ.get("TMPDIR") or "/tmp")
    return base / name, str(base / name)
