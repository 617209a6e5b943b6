"""Real peers on loopback: MCP server (official SDK) in a child process, scripted OpenAI-compatible
server, GitHub REST stand-in checked against GitHub's OpenAPI description, bare git origin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from peers import events, scenarios
from peers.github_stub import GitHubStub
from peers.harness import ActionRun, McpProcess, SampleRepo, make_sample_repo, run_action, start_mcp
from peers.openai_stub import ScriptedLLM
from peers.openapi import OpenAPIChecker
from remediate.report import load_schema


@pytest.fixture(scope="session")
def openapi() -> OpenAPIChecker:
    return OpenAPIChecker.load()


@pytest.fixture
def github(openapi: OpenAPIChecker) -> Iterator[GitHubStub]:
    stub = GitHubStub(checker=openapi).start()
    yield stub
    stub.stop()
    assert stub.violations == [], "requests departed from GitHub's OpenAPI description"


@pytest.fixture(scope="session")
def _incident_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[McpProcess]]:
    """The incident MCP server, started once a worker: its logs and incident never change, and a test sees only
    its own calls (the journal is emptied before each test). A test that ended it gets a new one."""
    base = tmp_path_factory.mktemp("incident-mcp")
    holder = [_start_incident_server(base)]
    yield holder
    holder[0].stop()


def _start_incident_server(base: Path) -> McpProcess:
    return start_mcp(base, scenarios.incident_logs(), {"incident_id": scenarios.INCIDENT_ID, "summary": "memory leak"})


@pytest.fixture
def mcp(_incident_server: list[McpProcess]) -> McpProcess:
    server = _incident_server[0]
    if server.process.poll() is not None:
        server = _incident_server[0] = _start_incident_server(server.journal.parent)
    server.journal.unlink(missing_ok=True)
    return server


@dataclass
class Outcome:
    run: ActionRun
    repo: SampleRepo
    llm: ScriptedLLM
    github: GitHubStub

    def prompt_texts(self) -> list[str]:
        return [json.dumps(r) for r in self.llm.requests]

    def first_prompt(self) -> str:
        return self.llm.requests[0]["messages"][1]["content"]

    def offered_tools(self) -> set[str]:
        return {t["function"]["name"] for t in self.llm.requests[0]["tools"]}


@pytest.fixture
def remediate(request: pytest.FixtureRequest, tmp_path: Path, github: GitHubStub, mcp: McpProcess) -> Iterator[Any]:
    """One action run against the real peers. Tests marked `entrypoint` start the container's entrypoint as a
    child process, as the runner does; the others call the same entrypoint function in this process."""
    started: list[ScriptedLLM] = []
    child = request.node.get_closest_marker("entrypoint") is not None

    def go(script: list[dict[str, Any]], *, event_name: str = "repository_dispatch",
           event: dict[str, Any] | None = None, inputs: dict[str, str] | None = None, stream: bool = False,
           config_extra: str = "", config: str | None = None, env: dict[str, str] | None = None,
           payload: dict[str, Any] | None = None, repo: SampleRepo | None = None, guardrails: str = "",
           blocked: list[str] | None = None,
           extra_files: dict[str, str] | None = None, symlinks: dict[str, str] | None = None) -> Outcome:
        llm = ScriptedLLM(script).start()
        started.append(llm)
        if repo is None:
            text = config if config is not None else scenarios.config_yaml(
                mcp.url, stream=stream, extra=config_extra, guardrails=guardrails, blocked=blocked)
            repo = make_sample_repo(tmp_path / f"case{len(started)}", text, extra_files, symlinks)
        if event is None:
            event = events.repository_dispatch(payload or scenarios.payload(repo.bug_commit))
        run = run_action(tmp_path / f"case{len(started)}", repo.workspace, event_name, event,
                         {"github-token": github.token, **(inputs or {})},
                         {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": llm.api_key,
                          "INCIDENT_MCP_TOKEN": mcp.token, "GITHUB_API_URL": github.api_url,
                          "GITHUB_REPOSITORY": f"{github.owner}/{github.repo}", **(env or {})},
                         in_process=not child)
        if run.report is not None:
            jsonschema.Draft202012Validator(load_schema()).validate(run.report)
        return Outcome(run, repo, llm, github)

    yield go
    for llm in started:
        llm.stop()
