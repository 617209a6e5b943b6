"""The first prompt: diagnosis, condensed logs, suspect code and commit. Builders are pure; the
caller supplies file contents, commit text and MCP results."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remediate.context.logs import condense
from remediate.incident.payload import Incident

MAX_FILE_LINES = 300


@dataclass(frozen=True)
class Section:
    title: str
    body: str
    untrusted_source: str | None = None

    def render(self) -> str:
        body = self.body.replace("</untrusted>", "<\\/untrusted>")
        if self.untrusted_source:
            body = f'<untrusted source="{self.untrusted_source}">\n{body}\n</untrusted>'
        return f"## {self.title}\n{body}\n"


@dataclass(frozen=True)
class ContextPack:
    sections: tuple[Section, ...]
    logs: tuple[dict[str, Any], ...]  # per MCP source: sizes before and after, what condensation kept
    implicated_files: frozenset[str]

    @property
    def logs_chars_before(self) -> int:
        return sum(s["chars_before"] for s in self.logs)

    @property
    def logs_chars_after(self) -> int:
        return sum(s["chars_after"] for s in self.logs)

    def render(self) -> str:
        return "\n".join(s.render() for s in self.sections)


CHARS_PER_TOKEN = 4  # an estimate: exact tokenizers download their data at first use


def numbered(content: str, start: int = 1, end: int | None = None) -> str:
    lines = content.splitlines()
    end = min(end or len(lines), len(lines), start + MAX_FILE_LINES - 1)
    body = "\n".join(f"{n:>5}\t{lines[n - 1]}" for n in range(start, end + 1))
    return body + (f"\n[lines {end + 1}-{len(lines)} not shown]" if end < len(lines) else "")


def locate_function(source: str, dotted: str) -> tuple[int, int] | None:
    """Line span of `Class.method` or `function` (the last parts of a dotted name) in `source`."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    parts = [p for p in re.split(r"[.:]", dotted.replace("()", "")) if p]
    for start in range(len(parts)):
        wanted = parts[start:]
        scope: Sequence[ast.stmt] = tree.body
        node = None
        for name in wanted:
            node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                         and n.name == name), None)
            if node is None:
                break
            scope = node.body
        if node is not None:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return first, node.end_lineno or node.lineno
    return None


def build_context(incident: Incident, *, read: Callable[[str], str | None], tracked: Sequence[str],
                  commit_text: str | None, mcp_texts: Mapping[str, str], redact: Callable[[str], str],
                  log_budget_tokens: int) -> ContextPack:
    sections = [Section("Incident", redact(_incident_text(incident)), "incident payload")]
    logs: list[dict[str, Any]] = []
    share = CHARS_PER_TOKEN * log_budget_tokens // max(len(mcp_texts), 1)
    for label, text in mcp_texts.items():
        clean = redact(text)
        if len(clean) <= share:  # small results (an incident record, a short query) are kept as they are
            logs.append({"source": label, "chars_before": len(text), "chars_after": len(clean), "condensed": False})
            sections.append(Section(f"Incident data from MCP: {label}", clean, f"mcp {label}"))
            continue
        condensed = condense(clean, share, tracked)
        logs.append({"source": label, "chars_before": len(text), "chars_after": condensed.chars_after,
                     "condensed": True, "lines": condensed.lines, "templates": condensed.templates,
                     "distinct_errors": condensed.errors, "distinct_traces": condensed.traces,
                     "repo_files": list(condensed.repo_files), "first": condensed.first, "last": condensed.last,
                     "truncated": condensed.truncated})
        sections.append(Section(f"Incident data from MCP: {label} (condensed)", condensed.text, f"mcp {label}"))
    implicated: set[str] = set()
    for path in incident.suspect.files:
        content = read(path) if path in tracked else None
        if content is None:
            sections.append(Section(f"Suspect file {path}", "(not found in the repository)"))
            continue
        implicated.add(path)
        sections.append(Section(f"Suspect file {path}", redact(numbered(content))))
    for function in incident.suspect.functions:
        candidates = [p for p in incident.suspect.files if p in tracked] + \
                     [p for p in tracked if p.endswith(".py") and p not in incident.suspect.files]
        for path in candidates:
            content = read(path)
            span = locate_function(content or "", function)
            if content and span:
                implicated.add(path)
                sections.append(Section(f"Suspect function {function} in {path}:{span[0]}-{span[1]}",
                                        redact(numbered(content, span[0], span[1]))))
                break
        else:
            sections.append(Section(f"Suspect function {function}", "(not found in tracked Python files)"))
    if incident.suspect.commit:
        body = redact(commit_text) if commit_text else "(this commit is not in the checkout's history)"
        sections.append(Section(f"Suspect commit (git show {incident.suspect.commit})", body,
                                "git history" if commit_text else None))
    return ContextPack(tuple(sections), tuple(logs), frozenset(implicated))


def _incident_text(incident: Incident) -> str:
    lines = [f"Incident: {incident.id}", f"Summary: {incident.summary or '(none)'}"]
    for label, value in (("Service", incident.service), ("Severity", incident.severity),
                         ("Source", incident.source)):
        if value:
            lines.append(f"{label}: {value}")
    if incident.suspect.files:
        lines.append("Suspect files: " + ", ".join(incident.suspect.files))
    if incident.suspect.functions:
        lines.append("Suspect functions: " + ", ".join(incident.suspect.functions))
    if incident.suspect.commit:
        lines.append(f"Suspect commit: {incident.suspect.commit}")
    for name, url in incident.links:
        lines.append(f"Link {name}: {url}")
    return "\n".join(lines)


def scope_note(scope_files: frozenset[str] | None, protected: Sequence[str], max_files: int,
               max_lines: int) -> Section:
    scope = ("the whole repository" if scope_files is None
             else ", ".join(sorted(scope_files)) + ", and test files")
    return Section("What you may change", f"Files in scope: {scope}.\nProtected (never writable): "
                   f"{', '.join(protected) or '(none)'}, .git/, .github/.\nLimits: at most {max_files} files "
                   f"and {max_lines} changed lines in total.")

