"""The MCP client against the official SDK's own server, over every transport a user can configure:
streamable HTTP, legacy HTTP+SSE and stdio; auth failures, dead servers and dropped sessions."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from peers import scenarios
from peers.harness import ROOT, free_port, mcp_files, start_mcp
from remediate.config import MCPServerConfig
from remediate.mcp.client import McpError, McpHub

INCIDENT = {"incident_id": scenarios.INCIDENT_ID, "summary": "memory leak"}
TOKEN = "mcp-bridge-token-123456"


def _server(**fields) -> MCPServerConfig:
    return MCPServerConfig.model_validate({"name": "incidents", "timeout_seconds": 10, **fields})


def _logs_via(hub: McpHub) -> str:
    tool = hub.find("incidents", "get_incident_logs")
    assert tool is not None
    result = hub.call(tool, {"incident_id": scenarios.INCIDENT_ID}, by="prefetch")
    assert not result.is_error
    return result.text


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_remote_transports_discover_and_call_with_bearer_auth(tmp_path, transport):
    server = start_mcp(tmp_path, "line one\nMemoryError: boom\n", INCIDENT, transport=transport)
    try:
        config = _server(url=server.url, auth={"type": "bearer", "token_env": "MCP_TOKEN"},
                         headers={"X-Org": "acme"})
        assert config.transport == ("sse" if transport == "sse" else "streamable-http")
        with McpHub([config], {"MCP_TOKEN": TOKEN}) as hub:
            # Read-only tools only; the destructive ones are listed but never offered.
            assert {t.name for t in hub.offered["incidents"]} >= {"get_incident_logs", "restart_service"}
            assert "mcp__incidents__restart_service" not in hub.tools
            assert "MemoryError: boom" in _logs_via(hub)
    finally:
        server.stop()


def test_stdio_server_gets_only_its_own_env(tmp_path):
    args = ["-m", "peers.mcp_incident", "--transport", "stdio", *mcp_files(tmp_path, "stdio logs\n", INCIDENT)]
    config = _server(command=sys.executable, args=args, cwd=str(ROOT),
                     env={"GRAFANA_URL": "http://grafana.local", "GRAFANA_TOKEN": "${MY_GRAFANA_TOKEN}"})
    environ = {"PATH": "/usr/bin:/bin", "HOME": "/root", "OPENAI_API_KEY": "sk-secret", "GITHUB_TOKEN": "ghs_x",
               "MY_GRAFANA_TOKEN": "glsa_abc", "AWS_SECRET_ACCESS_KEY": "aws"}
    with McpHub([config], environ) as hub:
        assert config.transport == "stdio"
        assert _logs_via(hub) == "stdio logs\n"
        names = set(hub.call(hub.find("incidents", "environment_names"), {}, by="agent").text.splitlines())
    assert {"GRAFANA_URL", "GRAFANA_TOKEN", "PATH", "HOME"} <= names
    assert not names & {"OPENAI_API_KEY", "GITHUB_TOKEN", "MY_GRAFANA_TOKEN", "AWS_SECRET_ACCESS_KEY"}


def test_a_dropped_stdio_session_is_retried_once_on_a_fresh_process(tmp_path):
    args = ["-m", "peers.mcp_incident", "--transport", "stdio", *mcp_files(tmp_path, "after restart\n", INCIDENT)]
    config = _server(command=sys.executable, args=args, cwd=str(ROOT), tools=["get_incident_logs", "exit_server"])
    with McpHub([config], {"PATH": "/usr/bin:/bin"}) as hub:
        with pytest.raises(McpError):
            hub.call(hub.find("incidents", "exit_server"), {}, by="agent")  # the process dies mid-call
        assert _logs_via(hub) == "after restart\n"
    assert [r.ok for r in hub.records] == [False, True]


def test_a_restarted_http_server_is_reached_again_on_a_new_session(tmp_path):
    port = free_port()
    server = start_mcp(tmp_path, "first life\n", INCIDENT, port=port)
    config = _server(url=server.url, auth={"type": "bearer", "token_env": "MCP_TOKEN"})
    try:
        with McpHub([config], {"MCP_TOKEN": TOKEN}) as hub:
            assert _logs_via(hub) == "first life\n"
            server.stop()
            server = start_mcp(tmp_path, "second life\n", INCIDENT, port=port)
            assert _logs_via(hub) == "second life\n"  # the old session id means nothing to the new process
        assert [r.ok for r in hub.records] == [True, True]
    finally:
        server.stop()


@pytest.mark.parametrize(("token", "expected"), [
    ("wrong-token", "HTTP 401 Unauthorized: check the token in $MCP_TOKEN"),
    ("valid-but-unscoped", "HTTP 403 Forbidden: the token in $MCP_TOKEN lacks access"),
])
def test_auth_failures_name_the_server_and_what_to_check(tmp_path, token, expected):
    server = start_mcp(tmp_path, "", INCIDENT, forbidden_token="valid-but-unscoped")
    try:
        config = _server(url=server.url, auth={"type": "bearer", "token_env": "MCP_TOKEN"})
        with pytest.raises(McpError) as caught:
            McpHub([config], {"MCP_TOKEN": token}).__enter__()
    finally:
        server.stop()
    message = str(caught.value)
    assert message.startswith(f"MCP server 'incidents' ({server.url}) connect: ")
    assert expected in message and token not in message


def test_a_wrong_path_is_a_404_that_says_which_path(tmp_path):
    server = start_mcp(tmp_path, "", INCIDENT)
    try:
        config = _server(url=server.url.replace("/mcp", "/v1/mcp"), auth={"type": "bearer", "token_env": "T"})
        with pytest.raises(McpError, match=r"HTTP 404 Not Found: check the url path"):
            McpHub([config], {"T": TOKEN}).__enter__()
    finally:
        server.stop()


def test_a_server_that_never_answers_times_out_within_the_connect_timeout():
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(8)  # accepts into the backlog, never answers
    url = f"http://127.0.0.1:{blackhole.getsockname()[1]}/mcp"
    config = _server(url=url, connect_timeout_seconds=1, timeout_seconds=1)
    started = time.monotonic()
    with pytest.raises(McpError, match=r"timed out \(connect_timeout_seconds 1, timeout_seconds 1\)"):
        McpHub([config], {}).__enter__()
    assert time.monotonic() - started < 10
    blackhole.close()


def test_a_missing_stdio_command_says_so(tmp_path):
    config = _server(command="mcp-server-that-is-not-installed", args=["--stdio"])
    with pytest.raises(McpError) as caught:
        McpHub([config], {"PATH": "/usr/bin:/bin"}).__enter__()
    assert "command 'mcp-server-that-is-not-installed' not found" in str(caught.value)
    assert "(mcp-server-that-is-not-installed --stdio)" in str(caught.value)


def test_a_stdio_server_that_dies_at_start_reports_its_stderr(tmp_path: Path):
    config = _server(command=sys.executable, args=["-c", "import sys; sys.exit('GRAFANA_URL is not set')"])
    with pytest.raises(McpError) as caught:
        McpHub([config], {"PATH": "/usr/bin:/bin"}).__enter__()
    assert "its stderr: GRAFANA_URL is not set" in str(caught.value)


def test_discovery_follows_pagination_to_the_last_page():
    config = _server(command=sys.executable, args=["-m", "peers.mcp_paged", "--tools", "7", "--page", "3"],
                     cwd=str(ROOT))
    with McpHub([config], {"PATH": "/usr/bin:/bin"}) as hub:
        assert [t.name for t in hub.offered["incidents"]] == [f"query_{i}" for i in range(7)]
        assert len(hub.tools) == 7  # all annotated read-only
        assert hub.call(hub.find("incidents", "query_6"), {"q": "x"}, by="agent").text == "query_6 answered"
