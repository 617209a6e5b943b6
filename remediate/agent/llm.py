"""OpenAI-compatible chat completions with tool calling, plain or streamed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from remediate.config import LLMConfig
from remediate.outcome import Failure, Reason


class LLMError(Failure):
    """One failed attempt; the agent decides whether to retry and what it cost."""

    reason_code = Reason.LLM_UNAVAILABLE

    def __init__(self, message: str, *, retryable: bool, maybe_billed: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.maybe_billed = maybe_billed


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage_reported: bool
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0

    def as_message(self) -> dict[str, Any]:
        # "" rather than null beside tool calls: OpenAI takes either, llama.cpp's server only a string.
        message: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in self.tool_calls]
        return message


class ChatModel(Protocol):
    model: str

    def complete(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]],
                 max_tokens: int, deadline: float | None = None) -> Completion:
        """`deadline` (time.monotonic): the agent's wall-time limit; no call, streamed or not, outlives it."""


class OpenAIChat:
    def __init__(self, config: LLMConfig, api_key: str, base_url: str | None) -> None:
        from openai import OpenAI

        self.model = config.api_model
        self.stream = config.stream
        self.temperature = config.temperature
        # Retries are the agent's: each attempt must pass the budget meter and be counted.
        self.client = OpenAI(api_key=api_key, base_url=base_url, timeout=config.timeout_seconds, max_retries=0)
        self.timeout_seconds = config.timeout_seconds

    def complete(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]],
                 max_tokens: int, deadline: float | None = None) -> Completion:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": list(messages), "tools": list(tools),
                                  "max_completion_tokens": max_tokens}
        if deadline is not None:
            kwargs["timeout"] = max(1.0, min(self.timeout_seconds, deadline - time.monotonic()))
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        try:
            if self.stream:
                return self._streamed(kwargs, deadline)
            response = self.client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
            hint = ""
            if exc.status_code == 400 and "context" in exc.message.lower():
                hint = (" (the prompt does not fit the model's context window: lower agent.first_prompt_tokens "
                        "and llm.max_tokens, or use a model with a larger context)")
            raise LLMError(f"LLM endpoint answered HTTP {exc.status_code}: {_first_line(exc.message)}{hint}",
                           retryable=retryable, maybe_billed=False) from None
        except openai.APIError as exc:
            # No answer (timeout, dropped connection): the provider may have run and billed the call.
            raise LLMError(f"LLM endpoint failed: {_first_line(str(exc))}", retryable=True,
                           maybe_billed=True) from None
        choice = response.choices[0]
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments or "{}")
                      for c in (choice.message.tool_calls or []) if getattr(c, "function", None))
        return _completion(choice.message.content, calls, choice.finish_reason, response.usage)

    def _streamed(self, kwargs: dict[str, Any], deadline: float | None) -> Completion:
        stream = self.client.chat.completions.create(**kwargs, stream=True,
                                                     stream_options={"include_usage": True})
        content: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish_reason = None
        usage = None
        chunks = 0
        for chunk in stream:
            chunks += 1
            if deadline is not None and time.monotonic() > deadline:
                stream.close()
                raise LLMError("the streamed answer was still coming when the wall-time limit was reached",
                               retryable=False, maybe_billed=True)
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    content.append(delta.content)
                for call in delta.tool_calls or []:
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    if call.id:
                        slot["id"] = call.id
                    if call.function and call.function.name:
                        slot["name"] += call.function.name
                    if call.function and call.function.arguments:
                        slot["arguments"] += call.function.arguments
                finish_reason = choice.finish_reason or finish_reason
        if not chunks:  # llama.cpp's server answers a streamed request with tools by an empty 200
            raise LLMError("the streamed answer was empty (the server sent no chunk)", retryable=True,
                           maybe_billed=True)
        tool_calls = tuple(ToolCall(c["id"], c["name"], c["arguments"] or "{}") for _, c in sorted(calls.items()))
        return _completion("".join(content) or None, tool_calls, finish_reason, usage)


def _completion(content: str | None, calls: tuple[ToolCall, ...], finish_reason: str | None,
                usage: Any) -> Completion:
    if usage is None:
        return Completion(content, calls, finish_reason, usage_reported=False)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Completion(content, calls, finish_reason, True, usage.prompt_tokens or 0, cached,
                      usage.completion_tokens or 0)


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:300] if text and text.strip() else "no message"
