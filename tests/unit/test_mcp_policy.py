from mcp.types import CallToolResult, EmbeddedResource, ImageContent, ResourceLink, TextContent, TextResourceContents

from remediate.config import MCPServerConfig
from remediate.mcp_client import McpTool, allowed_tools, result_text

TOOLS = [McpTool("dd", "get_incident_logs", "", {}, read_only=True),
         McpTool("dd", "query_metrics", "", {}, read_only=True),
         McpTool("dd", "restart_service", "", {}, read_only=False),
         McpTool("dd", "mute.monitor", "", {}, read_only=False)]


def test_default_is_what_the_server_marks_read_only():
    server = MCPServerConfig(name="dd", url="http://x/mcp")
    assert [t.name for t in allowed_tools(server, TOOLS)] == ["get_incident_logs", "query_metrics"]


def test_an_allowlist_replaces_the_default():
    server = MCPServerConfig(name="dd", url="http://x/mcp", tools=["query_metrics", "mute.monitor"])
    assert [t.name for t in allowed_tools(server, TOOLS)] == ["query_metrics", "mute.monitor"]
    assert TOOLS[3].function_name == "mcp__dd__mute_monitor"  # OpenAI function names allow no dots


def test_results_are_flattened_deliberately():
    result = CallToolResult(content=[
        TextContent(type="text", text="ERROR boom"),
        ImageContent(type="image", data="aGVsbG8=", mime_type="image/png"),
        EmbeddedResource(type="resource", resource=TextResourceContents(uri="file:///log", text="resource text")),
        ResourceLink(type="resource_link", uri="https://logs.example/1", name="full log"),
    ], is_error=True)
    flat = result_text(result)
    assert flat.is_error
    assert flat.text.splitlines() == ["ERROR boom", "[image content (image/png) omitted]", "resource text",
                                      "[resource link: https://logs.example/1]"]
    structured = CallToolResult(content=[], structured_content={"count": 3})
    assert '"count": 3' in result_text(structured).text
