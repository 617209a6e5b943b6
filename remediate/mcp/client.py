"""MCP servers over the official SDK, behind a small synchronous facade.

The SDK is async and its sessions must live in one event loop, so the connections run on a
background thread; the rest of the pipeline calls `McpHub.call(...)` like any other function.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from remediate.config import MCPServerConfig
from remediate.mcp.content import McpResult, result_text
from remediate.outcome import Failure, Reason
from remediate.records import McpCallRecord

_OPENAI_NAME = re.compile(r"[^A-Za-z0-9_-]")


MAX_TOOL_PAGES = 100  # a server that pages its tools forever is a broken one


class McpError(Failure):
    """A server could not be reached or refused us; the message names the server."""

    reason_code = Reason.MCP_UNAVAILABLE


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


def allowed_tools(server: MCPServerConfig, tools: list[McpTool]) -> list[McpTool]:
    """The config's allowlist, else what the server itself annotates as read-only."""
    if server.tools is not None:
        wanted = set(server.tools)
        return [t for t in tools if t.name in wanted]
    return [t for t in tools if t.read_only]


def withheld_tools(server: MCPServerConfig, tools: list[McpTool]) -> list[dict[str, str]]:
    """The tools a server offers that the model is not given, each with why, so a user knows what to allow."""
    allowed = {t.name for t in allowed_tools(server, tools)}
    why = ("not in this server's tools: allowlist" if server.tools is not None
           else "not annotated read-only by the server (add it to tools: to allow it)")
    return [{"server": server.name, "tool": t.name, "why": why} for t in tools if t.name not in allowed]


class _Connection:
    """One server's session, owned by one task: the SDK's task groups must be entered and left by the same
    task, so a reconnect asks the owner to close and reopen rather than doing it from the calling task."""

    def __init__(self, server: MCPServerConfig, environ: Mapping[str, str]) -> None:
        self.server = server
        self.environ = environ
        self.client: Any = None
        self.protocol_version: str | None = None
        self.http_status: int | None = None  # the last HTTP error status the server answered with
        # A stdio server's stderr, kept for error messages; closed with the connection.
        self.errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._requests: asyncio.Queue[str] = asyncio.Queue()
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect, or after a dropped session close what is left of it and connect again."""
        self._ready = asyncio.get_running_loop().create_future()
        # A failure that arrives after the waiter gave up (timed out) is not an unhandled error.
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        if self._task is None:
            self._task = asyncio.create_task(self._own())
        else:
            self._requests.put_nowait("open")
        await asyncio.wait_for(asyncio.shield(self._ready), timeout=self.server.connect_timeout_seconds)

    async def close(self) -> None:
        self._requests.put_nowait("close")
        if self._task:
            with suppress(BaseException):
                await asyncio.wait_for(self._task, timeout=5)
        self.errlog.close()

    async def _own(self) -> None:
        from mcp import Client
        from mcp.types import Implementation

        from remediate import __version__
        from remediate.mcp.transport import open_transport

        request: str | None = "open"
        while request == "open":
            request = None
            try:
                async with AsyncExitStack() as stack:
                    transport = await open_transport(stack, self.server, self.environ, self.errlog,
                                                     self._heard)
                    client = Client(transport, read_timeout_seconds=self.server.timeout_seconds,
                                    raise_exceptions=True,
                                    client_info=Implementation(name="remediate", version=__version__))
                    await stack.enter_async_context(client)
                    self.client = client
                    self.protocol_version = _protocol_version(client)
                    self._settle(None)
                    request = await self._requests.get()
            except Exception as exc:  # a failed connect goes to its waiter; a broken session is noticed by calls
                self._settle(exc)
            self.client = None
            if request is None:
                request = await self._requests.get()

    def _heard(self, status: int) -> None:
        self.http_status = status

    def _settle(self, exc: BaseException | None) -> None:
        if self._ready is None or self._ready.done():
            return
        if exc is None:
            self._ready.set_result(None)
        else:
            self._ready.set_exception(exc)

    def stderr_tail(self) -> str:
        if self.errlog.closed:
            return ""
        self.errlog.seek(0)
        lines = [line for line in self.errlog.read().splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-300:]


def _protocol_version(client: Any) -> str | None:
    """The protocol revision the SDK negotiated with this server."""
    with suppress(Exception):
        version = client.protocol_version
        return version if isinstance(version, str) else None
    return None


@dataclass
class McpHub:
    servers: list[MCPServerConfig]
    environ: Mapping[str, str]
    tools: dict[str, McpTool] = field(default_factory=dict)  # function name -> tool, allowed ones only
    offered: dict[str, list[McpTool]] = field(default_factory=dict)  # server -> every tool it lists
    records: list[McpCallRecord] = field(default_factory=list)
    telemetry: Any = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _connections: dict[str, _Connection] = field(default_factory=dict)
    _stop: asyncio.Event | None = None
    _ready: Future[None] | None = None

    def __enter__(self) -> McpHub:
        self.start()
        if self._ready is not None:
            self._ready.result()
        return self

    def start(self) -> McpHub:
        """Connect in the background; entering the hub waits for it. A run starts it early so that connecting
        overlaps the sandbox's set-up."""
        if not self.servers or self._ready is not None:
            return self
        self._ready = Future()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(self._ready,), daemon=True, name="mcp")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ready is not None and not self._ready.done():
            with suppress(Exception):  # still connecting: let it finish (bounded by its timeouts), then stop it
                self._ready.result(timeout=60)
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(timeout=15)

    def _run(self, ready: Future[None]) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve(ready))

    async def _serve(self, ready: Future[None]) -> None:
        self._stop = asyncio.Event()
        try:
            for server in self.servers:
                connection = _Connection(server, self.environ)
                self._connections[server.name] = connection
                try:
                    await connection.open()
                    await self._discover(connection)
                except Exception as exc:
                    raise McpError(_failure(server, exc, connection, "connect")) from None
            ready.set_result(None)
            await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, McpError) else McpError(describe(exc)))
        finally:
            for connection in self._connections.values():
                await connection.close()

    async def _discover(self, connection: _Connection) -> None:
        server, client = connection.server, connection.client
        listed: list[McpTool] = []
        cursor = None
        for _ in range(MAX_TOOL_PAGES):
            page = await asyncio.wait_for(client.list_tools(cursor=cursor), timeout=server.timeout_seconds)
            for tool in page.tools:
                annotations = tool.annotations
                listed.append(McpTool(server.name, tool.name, tool.description or "",
                                      tool.input_schema or {"type": "object", "properties": {}},
                                      bool(annotations and annotations.read_only_hint)))
            cursor = page.next_cursor
            if not cursor:
                break
        else:
            raise ConnectionError(f"tools/list went on for more than {MAX_TOOL_PAGES} pages")
        self.offered[server.name] = listed
        for tool in allowed_tools(server, listed):
            name = tool.function_name
            if name in self.tools:  # two names that differ only in characters functions may not use
                name = f"{name[:57]}_{hashlib.sha1(tool.name.encode()).hexdigest()[:6]}"
            self.tools[name] = tool

    def find(self, server: str, name: str) -> McpTool | None:
        return next((t for t in self.offered.get(server, []) if t.name == name), None)

    def call(self, tool: McpTool, arguments: Mapping[str, Any], *, by: str, within: float | None = None) -> McpResult:
        """`within`: seconds the caller waits at most (the call is abandoned then, an McpError), on top of the
        server's own timeouts."""
        server = next(s for s in self.servers if s.name == tool.server)
        if self.telemetry is None:
            return self._timed_call(server, tool, arguments, by, None, within)
        from opentelemetry.trace import SpanKind

        from remediate.telemetry import set_error, traceparent_of

        connection = self._connections.get(server.name)
        with self.telemetry.span(f"tools/call {tool.name}", {
                **_span_attributes(server), "mcp.method.name": "tools/call", "gen_ai.tool.name": tool.name,
                "gen_ai.operation.name": "execute_tool", "mcp.protocol.version":
                connection.protocol_version if connection else None, "remediate.mcp.caller": by},
                kind=SpanKind.CLIENT) as span:
            result = self._timed_call(server, tool, arguments, by, traceparent_of(span), within)
            if result.is_error:
                span.set_attribute("error.type", "tool_error")
                set_error(span, "the tool reported an error")
            return result

    def _timed_call(self, server: MCPServerConfig, tool: McpTool, arguments: Mapping[str, Any], by: str,
                    traceparent: str | None, within: float | None = None) -> McpResult:
        started = time.monotonic()
        ok = False
        connection = self._connections[server.name]
        future = None
        try:
            future = asyncio.run_coroutine_threadsafe(
                self._call(connection, tool, dict(arguments), traceparent), self._loop)  # type: ignore[arg-type]
            limit = 2 * server.timeout_seconds + server.connect_timeout_seconds + 5
            result = future.result(timeout=limit if within is None else max(min(limit, within), 0.01))
            ok = not result.is_error
            return result
        except McpError:
            raise
        except Exception as exc:  # every failure becomes one message naming the server
            if future is not None:
                future.cancel()  # abandoned at the caller's limit: the call does not go on in the background
            raise McpError(_failure(server, exc, connection, f"tool {tool.name!r}")) from None
        finally:
            self.records.append(McpCallRecord(tool.server, tool.name, ok,
                                              int((time.monotonic() - started) * 1000), by))

    async def _call(self, connection: _Connection, tool: McpTool, arguments: dict[str, Any],
                    traceparent: str | None) -> McpResult:
        meta = {"traceparent": traceparent} if traceparent else None
        timeout = connection.server.timeout_seconds
        connection.http_status = None
        try:
            if connection.client is None:
                raise ConnectionError("the session is gone")
            result = await asyncio.wait_for(connection.client.call_tool(tool.name, arguments, meta=meta), timeout)
        except Exception as exc:
            if not (dropped_session(exc) or connection.http_status == 404):
                raise
            connection.http_status = None
            # One retry on a fresh session: servers restart, proxies drop idle streams, stdio children die.
            await connection.open()
            result = await asyncio.wait_for(connection.client.call_tool(tool.name, arguments, meta=meta), timeout)
        return result_text(result)


def _span_attributes(server: MCPServerConfig) -> dict[str, Any]:
    """OTel MCP conventions: where the server is and how it is reached (stdio is a pipe)."""
    if server.transport == "stdio":
        return {"mcp.server.name": server.name, "network.transport": "pipe"}
    url = urlparse(server.url or "")
    return {"mcp.server.name": server.name, "server.address": url.hostname, "server.port": url.port,
            "network.transport": "tcp", "network.protocol.name": "http"}


def dropped_session(exc: BaseException) -> bool:
    """A transport that went away, as opposed to a server that answered with an error or a timeout."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return False
    import anyio

    if isinstance(exc, (ConnectionError, anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream,
                        EOFError)):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 404:  # streamable HTTP: the server no longer knows the session id
        return True
    text = str(exc).lower()
    return any(s in text for s in ("session terminated", "session not found", "connection closed",
                                   "connection reset", "disconnected", "all connection attempts failed"))


def _failure(server: MCPServerConfig, exc: BaseException, connection: _Connection | None, what: str) -> str:
    status = connection.http_status if connection else None
    message = f"MCP server {server.name!r} ({server.location}) {what}: {describe(exc, server, status)}"
    tail = connection.stderr_tail() if connection and server.transport == "stdio" else ""
    return f"{message}; its stderr: {tail}" if tail else message


def describe(exc: BaseException, server: MCPServerConfig | None = None, status: int | None = None) -> str:
    """The innermost useful message of an exception (anyio wraps failures in groups), with what to check.
    `status` is the HTTP error status the server last answered with, when the exception lost it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None) or status
    auth = server.auth if server else None
    credential = (f"the token in ${auth.token_env}" if auth and auth.type == "bearer"
                  else f"client {auth.client_id!r} and the secret in ${auth.client_secret_env}"
                  if auth and auth.type == "client_credentials"
                  else f"client {auth.client_id!r} and the key in ${auth.private_key_env}" if auth
                  else "credentials (this server has no auth configured)")
    if status == 401:
        return f"HTTP 401 Unauthorized: check {credential}"
    if status == 403:
        return f"HTTP 403 Forbidden: {credential} lacks access to this server or its tools"
    if status == 404:
        return "HTTP 404 Not Found: check the url path (streamable HTTP usually ends in /mcp, SSE in /sse)"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        limits = (f"connect_timeout_seconds {server.connect_timeout_seconds:g}, timeout_seconds "
                  f"{server.timeout_seconds:g}" if server else "")
        return f"timed out ({limits})" if limits else "timed out"
    if isinstance(exc, FileNotFoundError) and server and server.transport == "stdio":
        return f"command {server.command!r} not found: install it in the job, or give its full path"
    return text.splitlines()[0][:300]
