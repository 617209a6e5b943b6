import json

from mcp.types import CallToolResult, EmbeddedResource, ImageContent, ResourceLink, TextContent, TextResourceContents

from remediate.config import MCPServerConfig
from remediate.mcp.client import McpTool, allowed_tools, result_text
from remediate.mcp.content import function_description, function_parameters

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
                                      "[resource link: https://logs.example/1 (full log)]"]
    assert "aGVsbG8=" not in flat.text  # base64 never reaches the model


def test_structured_content_wins_over_the_text_that_repeats_it():
    structured = CallToolResult(content=[TextContent(type="text", text='{"count": 3}'),
                                         TextContent(type="text", text="3 errors in the window")],
                                structured_content={"count": 3})
    assert json.loads(result_text(structured).text.split("\n3 errors")[0]) == {"count": 3}
    assert result_text(structured).text.count("count") == 1
    assert result_text(structured).text.endswith("3 errors in the window")


def test_a_wrapped_plain_result_is_not_repeated():
    wrapped = CallToolResult(content=[TextContent(type="text", text="line 1\nline 2")],
                             structured_content={"result": "line 1\nline 2"})
    assert result_text(wrapped).text == "line 1\nline 2"


NESTED = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "Window": {"type": "object", "description": "time range",
                   "properties": {"start": {"type": "string", "format": "date-time"}, "end": {"type": "string"}},
                   "required": ["start"]},
        "Node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}},
    },
    "properties": {
        "query": {"type": "string", "description": "LogQL", "minLength": 1},
        "level": {"enum": ["error", "warn", "info"], "default": "error"},
        "window": {"$ref": "#/$defs/Window"},
        "tree": {"$ref": "#/$defs/Node"},
    },
    "required": ["query", "window"],
}


def test_input_schemas_reach_the_model_faithfully_with_refs_inlined():
    params = function_parameters(NESTED)
    assert "$schema" not in params and "$defs" not in params
    assert params["required"] == ["query", "window"]
    assert params["properties"]["query"] == {"type": "string", "description": "LogQL", "minLength": 1}
    assert params["properties"]["level"] == {"enum": ["error", "warn", "info"], "default": "error"}
    assert params["properties"]["window"] == NESTED["$defs"]["Window"]
    assert "$ref" not in json.dumps(params)  # the recursive one is cut, not left dangling
    assert NESTED["$defs"]["Window"]["required"] == ["start"]  # the server's schema is not mutated


def test_a_non_object_or_missing_schema_still_gives_an_object():
    assert function_parameters(None) == {"type": "object", "properties": {}}
    wrapped = function_parameters({"type": "string", "enum": ["a", "b"]})
    assert wrapped["properties"]["input"] == {"type": "string", "enum": ["a", "b"]}
    assert function_parameters({"type": "object"}) == {"type": "object", "properties": {}}
    assert len(function_description("dd", "x" * 5000)) == 1024


def test_only_a_lost_transport_counts_as_a_dropped_session():
    import anyio

    from remediate.mcp.client import dropped_session

    assert dropped_session(anyio.ClosedResourceError())
    assert dropped_session(ExceptionGroup("g", [ConnectionResetError("peer reset")]))
    assert dropped_session(RuntimeError("Session terminated"))
    # A tool's own failure mentioning connections is the server's answer: retrying it on a new session is waste.
    assert not dropped_session(RuntimeError("cannot connect to Loki at http://loki:3100"))
    assert not dropped_session(TimeoutError())


def test_withheld_tools_are_named_with_why():
    from remediate.config import MCPServerConfig
    from remediate.mcp.client import McpTool, withheld_tools

    tools = [McpTool("s", "read_logs", "", {}, True), McpTool("s", "restart", "", {}, False)]
    by_annotation = MCPServerConfig(name="s", url="http://x/mcp")
    why = "not annotated read-only by the server (add it to tools: to allow it)"
    assert withheld_tools(by_annotation, tools) == [{"server": "s", "tool": "restart", "why": why}]
    by_list = MCPServerConfig(name="s", url="http://x/mcp", tools=["restart"])
    assert withheld_tools(by_list, tools) == [
        {"server": "s", "tool": "read_logs", "why": "not in this server's tools: allowlist"}]
