"""What a run is given (`RunRequest`) and what every stage after the first reads (`Setup`): built once,
frozen, so later stages have no optional fields to check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediate.actions import Runner
from remediate.config import Config
from remediate.errors import UserError
from remediate.gitops import Git
from remediate.incident.payload import Incident
from remediate.secrets import Redactor
from remediate.telemetry import Telemetry


@dataclass(frozen=True)
class RunRequest:
    repo: Path
    environ: Mapping[str, str]
    inputs: Mapping[str, str]
    event_name: str = "cli"
    event: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.inputs.get("dry-run", "false").lower() in ("true", "1", "yes")

    @property
    def command(self) -> str:
        """remediate (one job), or propose / deliver (two jobs: docs/safety.md, "Two-job mode")."""
        return self.inputs.get("command", "remediate")

    @property
    def github_token(self) -> str | None:
        return self.inputs.get("github-token") or self.environ.get("GITHUB_TOKEN")


@dataclass(frozen=True)
class Setup:
    request: RunRequest
    config: Config
    incident: Incident
    redact: Redactor
    telemetry: Telemetry
    runner: Runner
    git: Git

    @property
    def repo(self) -> Path:
        return self.request.repo

    @property
    def environ(self) -> Mapping[str, str]:
        return self.request.environ

    @property
    def dry_run(self) -> bool:
        return self.request.dry_run

    def preflight(self) -> None:
        """Fail before spending money on what would fail at the end anyway."""
        env = self.environ
        if not env.get(self.config.llm.api_key_env):
            raise UserError(f"environment variable {self.config.llm.api_key_env} is not set",
                            field="llm.api_key_env", hint="pass the LLM key as a secret in the step's env")
        if not self.dry_run and self.request.command != "propose" and not (
                self.request.github_token and env.get("GITHUB_REPOSITORY")):
            raise UserError("a GitHub token and GITHUB_REPOSITORY are needed to open a pull request",
                            field="github-token", hint="set them, or use dry-run")
