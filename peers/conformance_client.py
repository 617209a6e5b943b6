"""Our MCP client as the conformance suite (`@modelcontextprotocol/conformance`, client mode) runs it:
`python -m peers.conformance_client <server-url>`, with the scenario in MCP_CONFORMANCE_SCENARIO and its
credentials in MCP_CONFORMANCE_CONTEXT. It goes through remediate's own McpHub and config, as a run would:
connect, discover the tools, and call each one with arguments made from its schema."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from remediate.config import MCPServerConfig
from remediate.mcp.client import McpError, McpHub


def _argument(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    return {"number": 2, "integer": 3, "boolean": True, "array": [], "object": {}}.get(str(kind), "conformance")


def arguments_for(input_schema: dict[str, Any]) -> dict[str, Any]:
    properties = input_schema.get("properties") or {}
    return {name: _argument(schema) for name, schema in properties.items() if isinstance(schema, dict)}


def server_config(url: str, scenario: str, context: dict[str, Any]) -> tuple[MCPServerConfig, dict[str, str]]:
    fields: dict[str, Any] = {"name": "conformance", "url": url, "tools": None, "timeout_seconds": 20}
    environ: dict[str, str] = {}
    if "client_secret" in context:
        fields["auth"] = {"type": "client_credentials", "client_id": context["client_id"],
                          "client_secret_env": "CONFORMANCE_CLIENT_SECRET"}
        environ["CONFORMANCE_CLIENT_SECRET"] = context["client_secret"]
    elif "private_key_pem" in context:
        fields["auth"] = {"type": "private_key_jwt", "client_id": context["client_id"],
                          "private_key_env": "CONFORMANCE_PRIVATE_KEY",
                          "signing_algorithm": context.get("signing_algorithm", "ES256")}
        environ["CONFORMANCE_PRIVATE_KEY"] = context["private_key_pem"]
    return MCPServerConfig.model_validate(fields), environ


def main(argv: list[str]) -> int:
    url = argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    config, environ = server_config(url, scenario, context)
    try:
        with McpHub([config], environ) as hub:
            for tool in hub.offered["conformance"]:
                result = hub.call(tool, arguments_for(dict(tool.input_schema)), by="agent")
                print(f"{tool.name}: {'error: ' if result.is_error else ''}{result.text[:200]}")
    except McpError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
