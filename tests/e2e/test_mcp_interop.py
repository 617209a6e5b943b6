"""Interop with a server we did not write: the MCP reference server `@modelcontextprotocol/server-everything`
(npm, TypeScript SDK), over stdio and streamable HTTP: discovery, calls with arguments, error results,
non-text and structured content, and the schemas the model is offered."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.harness import free_port
from remediate.agent.tools import mcp_function_schemas
from remediate.config import MCPServerConfig
from remediate.mcp.client import McpHub

ROOT = Path(__file__).resolve().parents[2]
EVERYTHING = ROOT / "tests" / "npm" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / \
    "index.js"
NODE = shutil.which("node") or "node"
TOOLS = ["echo", "get-sum", "get-tiny-image", "get-resource-links", "get-resource-reference",
         "get-structured-content", "get-annotated-message", "trigger-long-running-operation"]


@pytest.fixture(params=["stdio", "streamable-http"])
def everything(request) -> Iterator[MCPServerConfig]:
    if request.param == "stdio":
        yield MCPServerConfig(name="everything", command=NODE, args=[str(EVERYTHING), "stdio"], tools=TOOLS)
        return
    port = free_port()
    process = subprocess.Popen([NODE, str(EVERYTHING), "streamableHttp"], env={**os.environ, "PORT": str(port)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield MCPServerConfig(name="everything", url=f"http://127.0.0.1:{port}/mcp", tools=TOOLS)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _call(hub: McpHub, name: str, **arguments):
    tool = hub.find("everything", name)
    assert tool is not None, f"{name} is not listed"
    return hub.call(tool, arguments, by="agent")


def test_discovery_and_calls_against_the_reference_server(everything):
    with McpHub([everything], {"PATH": os.environ["PATH"]}) as hub:
        listed = {t.name for t in hub.offered["everything"]}
        assert set(TOOLS) <= listed and len(listed) >= 10
        # Only the allowlisted tools are offered (hyphens are allowed in function names).
        assert set(hub.tools) == {f"mcp__everything__{n}" for n in TOOLS}

        echo = _call(hub, "echo", message="héllo ✓")
        assert not echo.is_error and echo.text == "Echo: héllo ✓"
        assert _call(hub, "get-sum", a=2, b=40.5).text == "The sum of 2 and 40.5 is 42.5."

        wrong = _call(hub, "get-sum", a="two", b=1)  # the server validates and answers with isError
        assert wrong.is_error and "a" in wrong.text

        image = _call(hub, "get-tiny-image")
        assert "[image content (image/png) omitted]" in image.text
        assert "iVBOR" not in image.text  # no base64 for the model

        links = _call(hub, "get-resource-links", count=2)
        assert links.text.count("[resource link: ") == 2

        embedded = _call(hub, "get-resource-reference", resourceType="Text", resourceId=1)
        assert "[resource link" not in embedded.text and "Resource 1" in embedded.text

        weather = _call(hub, "get-structured-content", location="Chicago")
        assert '"conditions": "Light rain / drizzle"' in weather.text
        assert weather.text.count("Light rain / drizzle") == 1  # the repeated text block is dropped

        annotated = _call(hub, "get-annotated-message", messageType="error", includeImage=True)
        assert not annotated.is_error and "[image content (image/png) omitted]" in annotated.text

        # Progress notifications during a call do not disturb the result.
        long = _call(hub, "trigger-long-running-operation", duration=1, steps=3)
        assert not long.is_error and "completed" in long.text.lower()
    assert all(r.server == "everything" for r in hub.records) and len(hub.records) == 9


def test_the_model_is_offered_the_servers_schemas_faithfully(everything):
    with McpHub([everything], {"PATH": os.environ["PATH"]}) as hub:
        offered = {t["function"]["name"]: t["function"] for t in mcp_function_schemas(hub)}
    weather = offered["mcp__everything__get-structured-content"]
    assert weather["description"].startswith("[MCP everything] Returns structured content")
    location = weather["parameters"]["properties"]["location"]
    assert location["enum"] == ["New York", "Chicago", "Los Angeles"] and location["description"] == "Choose city"
    assert weather["parameters"]["required"] == ["location"]
    links = offered["mcp__everything__get-resource-links"]["parameters"]["properties"]["count"]
    assert (links["minimum"], links["maximum"], links["default"]) == (1, 10, 3)
    assert offered["mcp__everything__get-sum"]["parameters"]["required"] == ["a", "b"]
