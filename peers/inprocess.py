"""The pipeline in-process, as the unit tests drive it: a real git checkout with a bare origin, real test runs,
and the edges (model, MCP hub, GitHub) replaced through `remediate.pipeline.Edges`."""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import jsonschema

from peers import events, scenarios
from peers.harness import SAMPLE_TEST_ENV, make_sample_repo, parse_outputs
from peers.memory_github import MemoryGitHub
from remediate.actions import Runner
from remediate.agent.llm import Completion, ToolCall
from remediate.mcp.client import McpHub
from remediate.pipeline import Edges, Run, RunRequest, finish
from remediate.report import load_schema

CONFIG = """llm: {model: openai/gpt-4.1-mini, api_key_env: OPENAI_API_KEY}
guardrails:
  protected_files: ["*.env*", "config/production.*", "Dockerfile*"]
costs: {budget_usd: 1.00}
"""
LLM_KEY = "sk-test-key-abcdefghijklmnopqrstuvwxyz"
TOKEN = "ghs_inprocesstoken0123456789abcdef"


class ScriptedModel:
    """A `ChatModel` that answers from a script and keeps every request."""

    model = "gpt-4.1-mini"

    def __init__(self, script: list[dict[str, Any] | Exception]) -> None:
        self.script = list(script)
        self.requests: list[list[dict[str, Any]]] = []
        self.tools: list[list[dict[str, Any]]] = []  # the tools offered with each request

    def complete(self, messages: Any, tools: Any, max_tokens: int, deadline: float | None = None) -> Completion:
        self.requests.append(copy.deepcopy(list(messages)))
        self.tools.append(copy.deepcopy(list(tools)))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        calls = tuple(ToolCall(f"call{len(self.requests)}_{i}", c["name"], json.dumps(c["arguments"]))
                      for i, c in enumerate(step.get("tool_calls", [])))
        return Completion(step.get("content"), calls, "tool_calls" if calls else "stop", True, 2000, 0, 150)


class Case:
    """One repository and its GitHub; `run` is one workflow run of the action on it."""

    def __init__(self, base: Path, config: str | None = CONFIG, extra_files: dict[str, str] | None = None,
                 symlinks: dict[str, str] | None = None) -> None:
        self.base = base
        self.repo = make_sample_repo(base / "repo", config, extra_files, symlinks)
        self.github = MemoryGitHub()
        self.home, self.runner_temp, self.commands = base / "home", base / "_temp", base / "_runner_file_commands"
        for folder in (self.home, self.runner_temp, self.commands):
            folder.mkdir(exist_ok=True)
        self.outputs_file = self.commands / "set_output"
        self.summary_file = self.commands / "step_summary"
        self.env_file, self.path_file = self.commands / "set_env", self.commands / "add_path"

    def run(self, script: list[Any], payload: dict[str, Any] | None = None, inputs: dict[str, str] | None = None,
            ) -> tuple[dict[str, Any], dict[str, str], ScriptedModel, str]:
        model = ScriptedModel(script)
        for file in (self.outputs_file, self.summary_file, self.env_file, self.path_file):
            file.write_text("")
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home), "GITHUB_ACTIONS": "true",
               "OPENAI_API_KEY": LLM_KEY, "GITHUB_REPOSITORY": "acme/svc", "GITHUB_OUTPUT": str(self.outputs_file),
               "GITHUB_STEP_SUMMARY": str(self.summary_file), "GITHUB_ENV": str(self.env_file),
               "GITHUB_PATH": str(self.path_file), "GIT_CONFIG_GLOBAL": "/dev/null",
               "RUNNER_TEMP": str(self.runner_temp), "GITHUB_TOKEN": TOKEN, **SAMPLE_TEST_ENV}
        event = events.repository_dispatch(payload or scenarios.payload(self.repo.bug_commit))
        stdout = io.StringIO()
        edges = Edges(chat=lambda *_: model, mcp=lambda servers, environ, telemetry: McpHub(list(servers), environ),
                      github=lambda *_: self.github)
        run = Run(RunRequest(self.repo.workspace, env, {"github-token": TOKEN, **(inputs or {})},
                             "repository_dispatch", event), Runner(env, stdout), edges)
        run.execute()
        exit_code = finish(run, self.base / "report.json")
        report = json.loads((self.base / "report.json").read_text())
        jsonschema.Draft202012Validator(load_schema()).validate(report)
        outputs = parse_outputs(self.outputs_file.read_text())
        if (inputs or {}).get("command") == "deliver":  # its LLM figures are the first job's: it calls no model
            assert model.requests == []
        else:
            assert int(outputs["llm-calls"]) == len(model.requests)
        assert exit_code == {"fixed": 0, "escalated": 2, "error": 1}[report["outcome"]]
        return report, outputs, model, stdout.getvalue()


