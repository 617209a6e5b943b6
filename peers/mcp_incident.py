"""An incident MCP server built with the official SDK: streamable HTTP or legacy HTTP+SSE with bearer auth,
or stdio.

Serves the logs of one incident from a file, like an observability bridge would, and offers a
destructive tool the agent must never be given. Every call is appended to a JSONL journal so tests
can see what reached the server. `environment_names` tells tests what environment a stdio server got,
and `exit_server` ends the process, as a crashing server would.

    python -m peers.mcp_incident --port 8931 --token T --logs logs.txt --journal calls.jsonl
    python -m peers.mcp_incident --transport stdio --logs logs.txt --journal calls.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

SCOPE = "incidents:read"


class StaticToken:
    """`token` may read incidents; `forbidden` is a valid token without that scope (HTTP 403)."""

    def __init__(self, token: str, forbidden: str | None = None) -> None:
        self.token = token
        self.forbidden = forbidden

    async def verify_token(self, token: str) -> AccessToken | None:
        if token == self.token:
            return AccessToken(token=token, client_id="remediate", scopes=[SCOPE])
        if self.forbidden and token == self.forbidden:
            return AccessToken(token=token, client_id="someone-else", scopes=[])
        return None


def record_call(journal: Path, tool: str, arguments: dict[str, Any], ctx: Context | None, **served: Any) -> None:
    """One call in the JSONL journal: the tool, its arguments, the request's _meta (a traceparent), and what the
    server answered when a test needs to know."""
    meta = None
    try:
        params_meta = ctx.request_context.meta if ctx else None
        meta = dict(params_meta) if params_meta else None
    except (AttributeError, LookupError, TypeError, ValueError):
        meta = None
    with journal.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"tool": tool, "arguments": arguments, "meta": meta, **served}, default=str) + "\n")


def build(port: int | None, token: str | None, logs: Path, journal: Path, incident: dict[str, Any],
          forbidden: str | None = None) -> MCPServer:
    warnings.filterwarnings("ignore", message=".*validate_token_resource.*")
    if token is None:
        server = MCPServer("incidents")
    else:
        server = MCPServer("incidents", token_verifier=StaticToken(token, forbidden), auth=AuthSettings(
            issuer_url="http://127.0.0.1:9", resource_server_url=f"http://127.0.0.1:{port}/mcp",
            required_scopes=[SCOPE], validate_token_resource=False))

    def record(tool: str, arguments: dict[str, Any], ctx: Context | None) -> None:
        record_call(journal, tool, arguments, ctx)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def get_incident_logs(incident_id: str, ctx: Context) -> str:
        """Raw log lines for the incident's time window."""
        record("get_incident_logs", {"incident_id": incident_id}, ctx)
        if incident_id != incident.get("incident_id"):
            return f"no logs for incident {incident_id}"
        return logs.read_text(encoding="utf-8")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def get_incident(incident_id: str, ctx: Context) -> dict[str, Any]:
        """The incident record with its diagnosis."""
        record("get_incident", {"incident_id": incident_id}, ctx)
        return incident if incident_id == incident.get("incident_id") else {}

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
    def restart_service(service: str, ctx: Context) -> str:
        """Restart a production service."""
        record("restart_service", {"service": service}, ctx)
        return f"restarted {service}"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def environment_names() -> list[str]:
        """The names of this server's environment variables."""
        return sorted(os.environ)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
    def exit_server(ctx: Context) -> str:
        """End the server process at once, as a crash would."""
        record("exit_server", {}, ctx)
        os._exit(3)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["http", "sse", "stdio"], default="http")
    parser.add_argument("--port", type=int)
    parser.add_argument("--token")
    parser.add_argument("--forbidden-token", help="a valid token that lacks the scope the tools need")
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--incident", type=Path, help="JSON incident record")
    args = parser.parse_args()
    incident = json.loads(args.incident.read_text()) if args.incident else {}
    if args.transport == "stdio":
        build(None, None, args.logs, args.journal, incident).run("stdio")
        return
    server = build(args.port, args.token, args.logs, args.journal, incident, args.forbidden_token)
    app = server.sse_app() if args.transport == "sse" else server.streamable_http_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
