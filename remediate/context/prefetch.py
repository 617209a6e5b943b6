"""The context stage: MCP prefetch calls filled from the incident, then the pack for the first prompt."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remediate.context.pack import ContextPack, build_context
from remediate.incident.payload import Incident
from remediate.mcp.client import McpError, McpHub
from remediate.run import Setup


def gather(setup: Setup, hub: McpHub, warnings: list[str], reserved_tokens: int = 0) -> ContextPack:
    """Prefetched MCP results, suspect code and the culprit commit (its patch of the suspect files only, when
    the diagnosis names files); failed prefetches become warnings. `reserved_tokens`: the first prompt's part
    that is not context (system prompt, tools), taken from agent.first_prompt_tokens before the logs' share."""
    texts = prefetch(setup, hub, warnings)
    tracked = setup.git.tracked_files()
    commit = setup.incident.suspect.commit
    suspects = [p for p in setup.incident.suspect.files if p in tracked]
    return build_context(setup.incident, read=lambda p: _read_text(setup.repo / p), tracked=tracked,
                         commit_text=setup.git.show_commit(commit, paths=suspects) if commit else None,
                         mcp_texts=texts, redact=setup.redact, log_budget_tokens=setup.config.mcp.log_budget_tokens,
                         budget_tokens=setup.config.agent.first_prompt_tokens, reserved_tokens=reserved_tokens)


def prefetch(setup: Setup, hub: McpHub, warnings: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for server in setup.config.mcp.servers:
        for entry in server.prefetch:
            name = entry if isinstance(entry, str) else entry.tool
            tool = hub.find(server.name, name)
            if tool is None:
                if not isinstance(entry, str):
                    warnings.append(f"prefetch: MCP server {server.name!r} has no tool {name!r}")
                continue
            args = (matched_arguments(tool.input_schema, setup.incident) if isinstance(entry, str)
                    else filled(entry.arguments, setup.incident))
            try:
                result = hub.call(tool, args, by="prefetch")
                texts[f"{server.name}/{name}"] = ("[the tool reported an error]\n" if result.is_error
                                                  else "") + result.text
            except McpError as exc:
                warnings.append(str(exc))
    return texts


def summary(pack: ContextPack) -> dict[str, Any]:
    """The report's `context` section."""
    return {"logs_chars_before": pack.logs_chars_before, "logs_chars_after": pack.logs_chars_after,
            "logs": list(pack.logs), "implicated_files": sorted(pack.implicated_files),
            "prompt_chars": len(pack.render()), "context_tokens": dict(pack.tokens)}


def matched_arguments(schema: Mapping[str, Any], incident: Incident) -> dict[str, Any]:
    """A prefetch tool named without arguments gets the incident's fields its schema asks for by name."""
    properties = schema.get("properties") or {}
    known = {"incident_id": incident.id, "incidentId": incident.id, "id": incident.id,
             "service": incident.service, "commit": incident.suspect.commit}
    return {k: v for k, v in known.items() if k in properties and v is not None}


def filled(arguments: Mapping[str, Any], incident: Incident) -> dict[str, Any]:
    """Configured prefetch arguments with the incident's fields put in (payload values are data: they fill
    placeholders, they are never parsed as further placeholders)."""
    fields = {"incident_id": incident.id, "service": incident.service or "", "commit": incident.suspect.commit or "",
              "severity": incident.severity or ""}

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{(incident_id|service|commit|severity)\}", lambda m: fields[m.group(1)], value)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return {k: fill(v) for k, v in arguments.items()}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    except OSError:
        return None
