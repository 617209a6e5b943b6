"""A stdio MCP server built on the official SDK's low-level Server that lists its tools a few per page,
as large observability servers do, so discovery must follow `nextCursor`.

    python -m peers.mcp_paged --tools 7 --page 3
"""

from __future__ import annotations

import argparse

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


def build(count: int, page: int) -> Server:
    tools = [types.Tool(name=f"query_{i}", description=f"query number {i}",
                        input_schema={"type": "object", "properties": {"q": {"type": "string"}}},
                        annotations=types.ToolAnnotations(read_only_hint=True)) for i in range(count)]

    async def list_tools(ctx: object, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        start = int(params.cursor) if params and params.cursor else 0
        end = start + page
        return types.ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < count else None)

    async def call_tool(ctx: object, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"{params.name} answered")])

    return Server("paged", on_list_tools=list_tools, on_call_tool=call_tool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=7)
    parser.add_argument("--page", type=int, default=3)
    args = parser.parse_args()
    server = build(args.tools, args.page)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(serve)


if __name__ == "__main__":
    main()
