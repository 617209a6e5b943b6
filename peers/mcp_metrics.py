"""A metrics MCP server built with the official SDK: streamable HTTP, with an optional bearer token, run as a
child process like an observability bridge (Datadog's, say) would be.

Its answers come from a script, a JSON object mapping a query to the values its successive calls return:

    {"p95:container.memory.usage{service:user-service}": [512000000, 498000000, 131000000],
     "p95 memory": {"values": [123456, null, 120000], "unit": "bytes"}}

Each call for a query (by either tool) takes the query's next value; the last one repeats once the list is used
up. A null answers that call with a tool error (isError); a list of numbers is a series of points; a query the
script does not name answers with no series. Every call is appended to a JSONL journal, with the value it got.

    python -m peers.mcp_metrics --port 8932 --script script.json --journal calls.jsonl [--token T]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import anyio
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from peers.harness import ROOT, McpProcess, free_port, listening
from peers.mcp_incident import record_call

SCOPE = "metrics:read"
STEP_SECONDS = 60  # the spacing of a series' points, the newest at the time of the call


class Series(BaseModel):
    """One series of a Datadog-style metrics query answer (`/api/v1/query`)."""

    metric: str
    display_name: str
    scope: str
    expression: str
    unit: str | None
    length: int
    pointlist: list[tuple[float, float]]  # [epoch milliseconds, value]


class MetricsAnswer(BaseModel):
    status: str
    res_type: str
    query: str
    from_date: int
    to_date: int
    series: list[Series]


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        return AccessToken(token=token, client_id="remediate", scopes=[SCOPE]) if token == self.token else None


class Script:
    """The scripted values and where each query is in its list."""

    def __init__(self, entries: dict[str, Any]) -> None:
        self.values: dict[str, list[Any]] = {}
        self.units: dict[str, str | None] = {}
        for query, entry in entries.items():
            spec = entry if isinstance(entry, dict) else {"values": entry}
            values = spec["values"] if isinstance(spec["values"], list) else [spec["values"]]
            if not values:
                raise ValueError(f"script entry {query!r} has no values")
            self.values[query], self.units[query] = values, spec.get("unit")
        self.calls: dict[str, int] = {}

    def next(self, query: str) -> tuple[bool, Any, int]:
        """(scripted, value, index of the value served)."""
        if query not in self.values:
            return False, None, -1
        index = min(self.calls.get(query, 0), len(self.values[query]) - 1)
        self.calls[query] = self.calls.get(query, 0) + 1
        return True, self.values[query][index], index


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _parts(query: str) -> tuple[str, str]:
    """The metric and scope of a Datadog query like `p95:container.memory.usage{service:user-service}`."""
    match = re.match(r"^\s*(?:[a-z0-9]+:)?([A-Za-z0-9_.]+)\s*(?:\{([^}]*)\})?", query)
    if not match:
        return query, "*"
    return match[1], match[2] or "*"


def answer(query: str, value: Any, unit: str | None, now: float) -> MetricsAnswer:
    points = value if isinstance(value, list) else [value]
    end = int(now) * 1000
    pointlist = [(float(end - (len(points) - 1 - i) * STEP_SECONDS * 1000), float(v)) for i, v in enumerate(points)]
    metric, scope = _parts(query)
    series = Series(metric=metric, display_name=metric, scope=scope, expression=query, unit=unit,
                    length=len(pointlist), pointlist=pointlist)
    start = int(pointlist[0][0]) if pointlist else end
    return MetricsAnswer(status="ok", res_type="time_series", query=query, from_date=start, to_date=end,
                         series=[series])


def render(query: str, value: Any, unit: str | None) -> str:
    points = value if isinstance(value, list) else [value]
    shown = ", ".join(_number(v) for v in points)
    return f"{query}: {shown}{f' {unit}' if unit else ''}"


def build(port: int, token: str | None, script: Script, journal: Path) -> MCPServer:
    warnings.filterwarnings("ignore", message=".*validate_token_resource.*")
    if token is None:
        server = MCPServer("metrics")
    else:
        server = MCPServer("metrics", token_verifier=StaticToken(token), auth=AuthSettings(
            issuer_url="http://127.0.0.1:9", resource_server_url=f"http://127.0.0.1:{port}/mcp",
            required_scopes=[SCOPE], validate_token_resource=False))

    def record(tool: str, arguments: dict[str, Any], ctx: Context | None, **served: Any) -> None:
        record_call(journal, tool, arguments, ctx, **served)

    def failure(query: str) -> CallToolResult:
        return CallToolResult(content=[TextContent(type="text", text=f"metrics backend error while querying {query}")],
                              is_error=True)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def query_metrics(query: str, ctx: Context) -> Annotated[CallToolResult, MetricsAnswer]:
        """Query a metric over the last minutes (Datadog query syntax); the series as JSON, and a text line."""
        scripted, value, index = script.next(query)
        record("query_metrics", {"query": query}, ctx, value=value, index=index, scripted=scripted)
        now = time.time()
        if not scripted:
            end = int(now) * 1000
            empty = MetricsAnswer(status="ok", res_type="time_series", query=query, from_date=end - 3_600_000,
                                  to_date=end, series=[])
            return CallToolResult(content=[TextContent(type="text", text=f"{query}: no data")],
                                  structured_content=empty.model_dump(mode="json"))
        if value is None:
            return failure(query)
        found = answer(query, value, script.units[query], now)
        return CallToolResult(content=[TextContent(type="text", text=render(query, value, script.units[query]))],
                              structured_content=found.model_dump(mode="json"))

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def query_text(query: str, ctx: Context) -> CallToolResult:
        """Query a metric; the latest value as a line of text."""
        scripted, value, index = script.next(query)
        record("query_text", {"query": query}, ctx, value=value, index=index, scripted=scripted)
        if not scripted:
            return CallToolResult(content=[TextContent(type="text", text=f"{query}: no data")])
        if value is None:
            return failure(query)
        return CallToolResult(content=[TextContent(type="text", text=render(query, value, script.units[query]))])

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    async def hang(seconds: float, ctx: Context) -> str:
        """Wait before answering, as a slow backend does."""
        record("hang", {"seconds": seconds}, ctx)
        await anyio.sleep(seconds)
        return f"waited {seconds:g} s"

    return server


def start_metrics(base: Path, script: dict[str, Any], token: str | None = None,
                  port: int | None = None) -> McpProcess:
    """The metrics server as a child process, serving `script`; its journal is base/metrics-journal.jsonl.
    `McpProcess.token` is "" when the server takes no token."""
    port = port or free_port()
    script_file, journal = base / "metrics-script.json", base / "metrics-journal.jsonl"
    script_file.write_text(json.dumps(script))
    Script(script)  # a malformed script fails here, not in the child
    process = subprocess.Popen([sys.executable, "-m", "peers.mcp_metrics", "--port", str(port), "--script",
                                str(script_file), "--journal", str(journal), *(["--token", token] if token else [])],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return listening(process, port, f"http://127.0.0.1:{port}/mcp", token or "", journal, "metrics server")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    parser.add_argument("--script", type=Path, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    args = parser.parse_args()
    script = Script(json.loads(args.script.read_text()))
    server = build(args.port, args.token, script, args.journal)
    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
