"""MCP servers over the official SDK, behind a small synchronous facade.

The SDK is async and its sessions must live in one event loop, so the connections run on a
background thread; the rest of the pipeline calls `McpHub.call(...)` like any other function.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from remediate.config import MCPServerConfig

_OPENAI_NAME = re.compile(r"[^A-Za-z0-9_-]")


class McpError(Exception):
    """A server could not be reached or refused us; the message names the server."""


@dataclass(frozen=True)
class McpTool:
    server: str
    name: str
    description: str
    input_schema: Mapping[str, Any]
    read_only: bool

    @property
    def function_name(self) -> str:
        return f"mcp__{self.server}__{_OPENAI_NAME.sub('_', self.name)}"[:64]


@dataclass(frozen=True)
class McpResult:
    text: str
    is_error: bool


@dataclass(frozen=True)
class McpCallRecord:
    server: str
    tool: str
    ok: bool
    duration_ms: int
    by: str  # "prefetch" or "agent"


def allowed_tools(server: MCPServerConfig, tools: list[McpTool]) -> list[McpTool]:
    """The config's allowlist, else what the server itself annotates as read-only."""
    if server.tools is not None:
        wanted = set(server.tools)
        return [t for t in tools if t.name in wanted]
    return [t for t in tools if t.read_only]


def result_text(result: Any) -> McpResult:
    """Flatten a CallToolResult into text the model can read; non-text content is named, not dumped."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} content ({block.mime_type}) omitted]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[binary resource {resource.uri} omitted]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {block.uri}]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, indent=1, default=str))
    return McpResult("\n".join(parts), bool(getattr(result, "is_error", False)))


@dataclass
class McpHub:
    servers: list[MCPServerConfig]
    token_for: Callable[[MCPServerConfig], str | None]
    tools: dict[str, McpTool] = field(default_factory=dict)  # function name -> tool, allowed ones only
    offered: dict[str, list[McpTool]] = field(default_factory=dict)  # server -> every tool it lists
    records: list[McpCallRecord] = field(default_factory=list)
    telemetry: Any = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _stop: asyncio.Event | None = None

    def __enter__(self) -> McpHub:
        if not self.servers:
            return self
        ready: Future[None] = Future()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True, name="mcp")
        self._thread.start()
        ready.result()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self, ready: Future[None]) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve(ready))

    async def _serve(self, ready: Future[None]) -> None:
        self._stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                for server in self.servers:
                    try:
                        await asyncio.wait_for(self._connect(stack, server), timeout=server.timeout_seconds)
                    except Exception as exc:
                        raise McpError(f"MCP server {server.name!r} at {server.url}: {describe(exc)}") from None
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, McpError) else McpError(describe(exc)))

    async def _connect(self, stack: AsyncExitStack, server: MCPServerConfig) -> None:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
        from mcp.types import Implementation

        from remediate import __version__

        headers = dict(server.headers)
        token = self.token_for(server)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        http = create_mcp_http_client(headers=headers, timeout=httpx2.Timeout(server.timeout_seconds))
        await stack.enter_async_context(http)
        client = Client(streamable_http_client(server.url or "", http_client=http),
                        read_timeout_seconds=server.timeout_seconds, raise_exceptions=True,
                        client_info=Implementation(name="remediate", version=__version__))
        await stack.enter_async_context(client)
        listed: list[McpTool] = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                annotations = tool.annotations
                listed.append(McpTool(server.name, tool.name, tool.description or "",
                                      tool.input_schema or {"type": "object", "properties": {}},
                                      bool(annotations and annotations.read_only_hint)))
            cursor = page.next_cursor
            if not cursor:
                break
        self._clients[server.name] = client
        self.offered[server.name] = listed
        for tool in allowed_tools(server, listed):
            self.tools[tool.function_name] = tool

    def find(self, server: str, name: str) -> McpTool | None:
        return next((t for t in self.offered.get(server, []) if t.name == name), None)

    def call(self, tool: McpTool, arguments: Mapping[str, Any], *, by: str) -> McpResult:
        server = next(s for s in self.servers if s.name == tool.server)
        if self.telemetry is None:
            return self._timed_call(server, tool, arguments, by, None)
        from urllib.parse import urlparse

        from opentelemetry.trace import SpanKind

        from remediate.telemetry import set_error, traceparent_of

        url = urlparse(server.url or "")
        with self.telemetry.span(f"tools/call {tool.name}", {
                "mcp.method.name": "tools/call", "gen_ai.tool.name": tool.name, "gen_ai.operation.name": "execute_tool",
                "mcp.server.name": tool.server, "server.address": url.hostname, "server.port": url.port,
                "network.transport": "tcp", "remediate.mcp.caller": by}, kind=SpanKind.CLIENT) as span:
            result = self._timed_call(server, tool, arguments, by, traceparent_of(span))
            if result.is_error:
                span.set_attribute("error.type", "tool_error")
                set_error(span, "the tool reported an error")
            return result

    def _timed_call(self, server: MCPServerConfig, tool: McpTool, arguments: Mapping[str, Any], by: str,
                    traceparent: str | None) -> McpResult:
        started = time.monotonic()
        ok = False
        try:
            future = asyncio.run_coroutine_threadsafe(
                self._call(tool, dict(arguments), traceparent), self._loop)  # type: ignore[arg-type]
            result = future.result(timeout=server.timeout_seconds + 5)
            ok = not result.is_error
            return result
        except McpError:
            raise
        except Exception as exc:  # every failure becomes one message naming the server
            raise McpError(f"MCP server {tool.server!r} tool {tool.name!r}: {describe(exc)}") from None
        finally:
            self.records.append(McpCallRecord(tool.server, tool.name, ok,
                                              int((time.monotonic() - started) * 1000), by))

    async def _call(self, tool: McpTool, arguments: dict[str, Any], traceparent: str | None) -> McpResult:
        client = self._clients[tool.server]
        meta = {"traceparent": traceparent} if traceparent else None
        result = await client.call_tool(tool.name, arguments, meta=meta)
        return result_text(result)


def describe(exc: BaseException) -> str:
    """The innermost useful message of an exception (anyio wraps failures in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return f"HTTP {status}: check the token named by auth.token_env"
    if status == 404:
        return "HTTP 404: check the server url path (usually /mcp)"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    return text.splitlines()[0][:300]
