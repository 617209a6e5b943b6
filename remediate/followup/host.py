"""What a follow-up run needs of the run that hosts it (pipeline.Run): the follow-ups sit below the pipeline,
which dispatches to them, so they see it through this protocol."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from remediate.actions import Runner
from remediate.config import Config
from remediate.deliver.github import GitHub
from remediate.gitops import Git
from remediate.outcome import Outcome, Reason
from remediate.report import Report
from remediate.run import RunRequest, Setup
from remediate.secrets import Redactor
from remediate.telemetry import Telemetry

if TYPE_CHECKING:
    from remediate.followup.review import FollowUp


class Host(Protocol):
    request: RunRequest
    report: Report
    runner: Runner
    redact: Redactor
    telemetry: Telemetry
    edges: Any  # pipeline.Edges: its `mcp` opens the hub
    setup: Setup | None
    followup: FollowUp | None
    cleanups: list[Callable[[], None]]
    escalating: bool

    @property
    def ships(self) -> bool: ...

    def stage(self, name: str) -> AbstractContextManager[None]: ...

    def read_config(self) -> Config: ...

    def configure(self, config: Config) -> None: ...

    def configure_secrets(self, config: Config) -> None: ...

    def open_git(self) -> Git: ...

    def github(self) -> GitHub: ...

    def traced(self, setup: Setup, parent: str | None = None, body: Callable[[], None] | None = None) -> None: ...

    def end(self, outcome: Outcome, reason: Reason, detail: str) -> None: ...



