"""Opening one MCP server with the official SDK: streamable HTTP, the legacy HTTP+SSE transport, or a stdio
server started as a child process; bearer or OAuth client-credentials auth and custom headers for HTTP."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

from remediate.config import MCPServerConfig
from remediate.secrets import scrubbed_env


def stdio_environment(server: MCPServerConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Safe basics (PATH, HOME, locale) plus exactly the server's `env`, with `${NAME}` expanded."""
    env = scrubbed_env(environ)
    env.update({name: server.expand(value, environ) for name, value in server.env.items()})
    return env


def http_headers(server: MCPServerConfig, environ: Mapping[str, str]) -> dict[str, str]:
    headers = {name: server.expand(value, environ) for name, value in server.headers.items()}
    if server.auth and server.auth.type == "bearer" and server.auth.token_env:
        token = environ.get(server.auth.token_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
    return headers


class _MemoryTokens:
    """OAuth tokens live for one run only; nothing is written to disk."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client_info: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


def _oauth(server: MCPServerConfig, environ: Mapping[str, str]) -> Any:
    from mcp.client.auth.extensions.client_credentials import (
        ClientCredentialsOAuthProvider,
        PrivateKeyJWTOAuthProvider,
        SignedJWTParameters,
    )

    assert server.auth and server.auth.client_id
    if server.auth.type == "private_key_jwt":
        key = environ.get(server.auth.private_key_env or "", "")
        signer = SignedJWTParameters(issuer=server.auth.client_id, subject=server.auth.client_id, signing_key=key,
                                     signing_algorithm=server.auth.signing_algorithm)
        return PrivateKeyJWTOAuthProvider(server_url=server.url or "", storage=_MemoryTokens(),
                                          client_id=server.auth.client_id,
                                          assertion_provider=signer.create_assertion_provider(),
                                          scope=server.auth.scope, issuer=server.auth.issuer)
    assert server.auth.client_secret_env
    return ClientCredentialsOAuthProvider(server_url=server.url or "", storage=_MemoryTokens(),
                                          client_id=server.auth.client_id,
                                          client_secret=environ.get(server.auth.client_secret_env, ""),
                                          token_endpoint_auth_method=server.auth.token_endpoint_auth,
                                          scope=server.auth.scope, issuer=server.auth.issuer)


async def open_transport(stack: AsyncExitStack, server: MCPServerConfig, environ: Mapping[str, str],
                         errlog: IO[str], on_status: Callable[[int], None]) -> Any:
    """The SDK transport for `server`, entered on `stack`. `errlog` takes a stdio server's stderr;
    `on_status` hears every HTTP error status, which the SDK folds into a generic error response."""
    if server.transport == "stdio":
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=server.command or "", args=list(server.args),
                                       env=stdio_environment(server, environ),
                                       cwd=Path(server.cwd) if server.cwd else None)
        return stdio_client(params, errlog=errlog)

    import httpx2
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = http_headers(server, environ)
    auth = _oauth(server, environ) if server.auth and server.auth.type != "bearer" else None
    timeout = httpx2.Timeout(server.timeout_seconds, connect=server.connect_timeout_seconds)

    async def hear(response: Any) -> None:
        if response.status_code >= 400:
            on_status(response.status_code)

    def factory(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None) -> Any:
        client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        client.event_hooks["response"].append(hear)
        return client

    if server.transport == "sse":
        from mcp.client.sse import sse_client

        return sse_client(server.url or "", headers=headers, timeout=server.connect_timeout_seconds,
                          sse_read_timeout=max(server.timeout_seconds, 60), httpx_client_factory=factory, auth=auth)

    from mcp.client.streamable_http import streamable_http_client

    http = factory(headers=headers, timeout=timeout, auth=auth)
    await stack.enter_async_context(http)
    return streamable_http_client(server.url or "", http_client=http)
