"""What a run is given (`RunRequest`) and what every stage after the first reads (`Setup`): built once,
frozen, so later stages have no optional fields to check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediate.actions import Runner
from remediate.config import Config
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
