"""The loop with a scripted model double (the ChatModel protocol): limits and outcomes, no servers."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from remediate.agent.budget import BudgetMeter, Price
from remediate.agent.llm import Completion, LLMError, ToolCall
from remediate.agent.loop import Agent
from remediate.agent.tools import Toolbox
from remediate.config import TelemetryConfig
from remediate.gitops import Git
from remediate.guard.guardrails import WritePolicy
from remediate.guard.workspace import Workspace
from remediate.secrets import Redactor
from remediate.telemetry import setup
from remediate.verify.execute import TestRun


class Scripted:
    model = "gpt-4.1-mini"

    def __init__(self, replies: list[Completion | LLMError]) -> None:
        self.replies = replies
        self.seen: list[int] = []

    def complete(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]],
                 max_tokens: int, deadline: float | None = None) -> Completion:
        self.seen.append(max_tokens)
        reply = self.replies.pop(0)
        if isinstance(reply, LLMError):
            raise reply
        return reply


def _call(name: str, **args: Any) -> Completion:
    return Completion(None, (ToolCall(f"c{name}", name, json.dumps(args)),), "tool_calls", True, 1000, 0, 50)


def _agent(tmp_path: Path, replies: list[Any], **kw: Any) -> Agent:
    (tmp_path / "a.py").write_text("x = 1\n")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"}
    commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i", "--allow-empty"]
    for args in (["init", "-q"], ["add", "-A"], commit):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, env=env)
    toolbox = Toolbox(Workspace(tmp_path, WritePolicy(scope_files=None)), Redactor(),
                      lambda paths: TestRun(("pytest",), (), "passed", passed=1), Git.open(tmp_path, dict(os.environ)))
    options = {"max_calls": 10, "max_seconds": 60, "max_tokens": 1000, "retries": 0, **kw}
    return Agent(Scripted(replies), toolbox, BudgetMeter(Price(0.4, 0.1, 1.6), kw.pop("budget", 1.0)),
                 setup(TelemetryConfig()), "openai", **options)


def test_finish_after_an_edit(tmp_path):
    agent = _agent(tmp_path, [_call("edit_file", path="a.py", old_str="x = 1", new_str="x = 2"),
                              _call("finish", summary="fixed x")])
    result = agent.run("fix it")
    assert (result.finished, result.detail) == (True, "fixed x")
    assert (tmp_path / "a.py").read_text() == "x = 2\n"
    assert agent.messages[3] == {"role": "tool", "tool_call_id": "cedit_file",
                                 "content": agent.messages[3]["content"]}


def test_wall_time_and_call_cap(tmp_path):
    assert _agent(tmp_path, [], max_seconds=0).run("x").reason == "wall_time"
    chatter = [Completion("hmm", (), "stop", True, 10, 0, 5) for _ in range(5)]
    agent = _agent(tmp_path, chatter, max_calls=3)
    assert agent.run("x").reason == "max_llm_calls" and len(agent.per_call) == 3


def test_a_timed_out_attempt_is_charged_its_reservation(tmp_path):
    agent = _agent(tmp_path, [LLMError("timed out", retryable=True, maybe_billed=True), _call("finish", summary="ok")],
                   retries=1)
    assert agent.run("x").finished
    first, second = agent.per_call
    assert first["cost_usd"] == first["reserved_usd"] > 0 and "error" in first
    assert agent.meter.spent_usd == pytest.approx(first["cost_usd"] + second["cost_usd"], abs=2e-6)
