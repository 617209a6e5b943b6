"""The built image (scripts/image check builds it and names it in REMEDIATE_IMAGE), run with buildah as the
runner runs a container action, against the same loopback peers as the end-to-end suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from peers import events, scenarios
from peers.container import ContainerRun, run_image
from peers.github_stub import GitHubStub
from peers.harness import SampleRepo, make_sample_repo
from peers.openai_stub import ScriptedLLM
from remediate.report import load_schema
from tests.e2e.conftest import _incident_server, github, mcp, openapi  # noqa: F401  (the end-to-end peers)


@pytest.fixture(scope="session")
def image() -> str:
    name = os.environ.get("REMEDIATE_IMAGE")
    if not name:
        raise pytest.UsageError("tests/image runs through scripts/image check, which builds the image first")
    return name


@dataclass
class ImageOutcome:
    run: ContainerRun
    repo: SampleRepo
    llm: ScriptedLLM


@pytest.fixture
def in_container(tmp_path: Path, image: str, github: GitHubStub, mcp: Any) -> Iterator[Any]:  # noqa: F811
    started: list[ScriptedLLM] = []

    def go(script: list[dict[str, Any]], *, payload: dict[str, Any] | None = None,
           inputs: dict[str, str] | None = None, config_extra: str = "", extra_files: dict[str, str] | None = None,
           mounts: tuple[Path, ...] = ()) -> ImageOutcome:
        llm = ScriptedLLM(script).start()
        started.append(llm)
        base = tmp_path / f"case{len(started)}"
        repo = make_sample_repo(base, scenarios.config_yaml(mcp.url, extra=config_extra), extra_files)
        event = events.repository_dispatch(payload or scenarios.payload(repo.bug_commit))
        run = run_image(image, base, repo.workspace, "repository_dispatch", event,
                        {"github-token": github.token, **(inputs or {})},
                        {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": llm.api_key,
                         "INCIDENT_MCP_TOKEN": mcp.token, "GITHUB_API_URL": github.api_url,
                         "GITHUB_REPOSITORY": f"{github.owner}/{github.repo}"},
                        mounts=(repo.origin, *mounts))
        if run.report is not None:
            jsonschema.Draft202012Validator(load_schema()).validate(run.report)
        return ImageOutcome(run, repo, llm)

    yield go
    for llm in started:
        llm.stop()
