"""What crosses between an MCP server and the model: tool results flattened to text on purpose, and tool
input schemas turned into function-calling parameters without losing what the server said."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

MAX_DESCRIPTION = 1024  # OpenAI's limit for a function description
_REF_DEPTH = 8


@dataclass(frozen=True)
class McpResult:
    text: str
    is_error: bool
    structured: Any = None  # the structured content as the server sent it (staging signals read it)


def result_text(result: Any) -> McpResult:
    """Flatten a CallToolResult for the model. Structured content is the authoritative form when present
    (text blocks that merely repeat it are dropped); images and audio are named, never dumped as base64;
    embedded text resources are included, binary ones and resource links are named with their URI."""
    structured = raw_structured = getattr(result, "structured_content", None)
    texts = [block.text for block in result.content or [] if getattr(block, "type", "") == "text"]
    if isinstance(structured, dict) and len(structured) == 1 and next(iter(structured.values())) == "\n".join(texts):
        structured = None  # a plain value wrapped as {"result": ...} by the server's SDK: the text says it all
    parts: list[str] = []
    if structured is not None:
        parts.append(json.dumps(structured, indent=1, ensure_ascii=False, default=str))
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            if structured is not None and _same_json(block.text, structured):
                continue
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} content ({block.mime_type}) omitted]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            mime = getattr(resource, "mime_type", None) or "unknown type"
            parts.append(text if text is not None else f"[binary resource {resource.uri} ({mime}) omitted]")
        elif kind == "resource_link":
            name = getattr(block, "name", None)
            parts.append(f"[resource link: {block.uri}{f' ({name})' if name else ''}]")
        else:
            parts.append(f"[{kind or 'unknown'} content omitted]")
    return McpResult("\n".join(parts), bool(getattr(result, "is_error", False)), raw_structured)


def _same_json(text: str, value: Any) -> bool:
    try:
        return json.loads(text) == value
    except ValueError:
        return False


def function_parameters(schema: Any) -> dict[str, Any]:
    """A tool's input schema as function parameters: the same schema (nested objects, enums, descriptions,
    defaults, bounds, required), with local `$ref`s to `$defs` inlined because many OpenAI-compatible servers
    do not resolve them, `$schema` dropped, and an object at the top as the format requires."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    out = copy.deepcopy(schema)
    definitions = {**out.pop("definitions", {}), **out.pop("$defs", {})}
    out.pop("$schema", None)
    out = _inline(out, definitions, 0)
    if out.get("type") != "object":
        return {"type": "object", "properties": {"input": out}, "required": ["input"]}
    out.setdefault("properties", {})
    return out


def _inline(node: Any, definitions: dict[str, Any], depth: int) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions, depth) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        target = definitions.get(ref.rsplit("/", 1)[1])
        if target is not None and depth < _REF_DEPTH:
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, definitions, depth + 1)
        return {"type": "object", "description": node.get("description", "") + " (recursive structure)"}
    return {key: _inline(value, definitions, depth) for key, value in node.items()}


def function_description(server: str, description: str) -> str:
    text = f"[MCP {server}] {description}".strip()
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 1] + "…"
