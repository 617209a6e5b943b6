"""The first prompt: diagnosis, condensed logs, suspect code and commit. Builders are pure; the
caller supplies file contents, commit text and MCP results."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediate.context.logs import MaskedLog, condense, faulting_lines, mask
from remediate.incident.payload import Incident

MAX_FILE_LINES = 300


_FENCE_END = re.compile(r"<\s*/\s*untrusted", re.IGNORECASE)  # however written, it cannot close the fence


@dataclass(frozen=True)
class Section:
    title: str
    body: str
    untrusted_source: str | None = None

    def render(self) -> str:
        body = _FENCE_END.sub(lambda m: m.group(0).replace("/", "\\/"), self.body)
        if self.untrusted_source:
            body = f'<untrusted source="{self.untrusted_source}">\n{body}\n</untrusted>'
        return f"## {self.title}\n{body}\n"


@dataclass(frozen=True)
class ContextPack:
    sections: tuple[Section, ...]
    logs: tuple[dict[str, Any], ...]  # per MCP source: sizes before and after, what condensation kept
    implicated_files: frozenset[str]
    tokens: dict[str, int] = field(default_factory=dict)  # the first prompt's estimated tokens, by part

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


WINDOW = 12  # lines shown on each side of a faulting line
OUTLINE_ENTRIES = 80


def excerpt(content: str, wanted: Sequence[tuple[int, int]], bounds: tuple[int, int] | None = None) -> str:
    """Numbered line ranges of `content` (merged, kept inside `bounds`), with a note for each gap."""
    lines = content.splitlines()
    low, high = bounds or (1, len(lines))
    spans = sorted((max(a, low), min(b, high)) for a, b in wanted if a <= high and b >= low)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, shown = [], low - 1
    for a, b in merged:
        if a > shown + 1:
            out.append(f"[lines {shown + 1}-{a - 1} not shown]")
        out += [f"{n:>5}\t{lines[n - 1]}" for n in range(a, b + 1)]
        shown = b
    if shown < high:
        out.append(f"[lines {shown + 1}-{high} not shown]")
    return "\n".join(out)


CLASS_INIT_LINES = 25  # of the enclosing class's __init__, where a method's attributes come from


def _class_of(tree: ast.Module, span: tuple[int, int]) -> ast.ClassDef | None:
    """The innermost class whose body holds the function at `span`."""
    found = None
    for node in ast.walk(tree):
        inside = isinstance(node, ast.ClassDef) and node.lineno < span[0] <= span[1] <= (node.end_lineno or 0)
        if inside and (found is None or node.lineno > found.lineno):
            found = node
    return found


def _class_context(tree: ast.Module | None, span: tuple[int, int]) -> tuple[list[tuple[int, int]], str]:
    """For a method: its class's header line and the start of its __init__ (what its attributes are)."""
    cls = _class_of(tree, span) if tree is not None else None
    if cls is None:
        return [], ""
    wanted = [(min([cls.lineno, *(d.lineno for d in cls.decorator_list)]), cls.lineno)]
    init = next((n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == "__init__"), None)
    if init is not None and init.lineno != span[0] and not (init.lineno <= span[0] <= (init.end_lineno or 0)):
        wanted.append((init.lineno, min(init.end_lineno or init.lineno, init.lineno + CLASS_INIT_LINES - 1)))
        return wanted, f"with class {cls.name}'s header and __init__"
    return wanted, f"with class {cls.name}'s header"


def function_view(content: str, span: tuple[int, int], faults: Sequence[int],
                  body_lines: int = MAX_FILE_LINES) -> tuple[str, str]:
    """A suspect function as the model needs it: its signature, its docstring elided (with a note), and the
    lines around the faulting lines the evidence names, or its body from the top when none falls inside it;
    for a method, its class's header and __init__ too."""
    first, last = span
    try:
        tree = ast.parse(content)
    except (SyntaxError, ValueError):
        tree = None
    body_start, doc = first + 1, None
    if tree is not None:
        node = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                   ast.ClassDef)) and n.lineno >= first
                     and (n.end_lineno or n.lineno) <= last), None)
        if node is not None and node.body:
            body_start = node.body[0].lineno
            head = node.body[0]
            if isinstance(head, ast.Expr) and isinstance(getattr(head, "value", None), ast.Constant) \
                    and isinstance(head.value.value, str):
                doc = (head.lineno, head.end_lineno or head.lineno)
                body_start = node.body[1].lineno if len(node.body) > 1 else (head.end_lineno or head.lineno) + 1
    inside = [f for f in faults if first <= f <= last]
    wanted = [(first, max(first, body_start - 1 if doc is None else doc[0] - 1))]
    if inside:
        wanted += [(f - WINDOW, f + WINDOW) for f in inside]
        note = f"faulting line(s) {', '.join(map(str, inside))} from the evidence"
    else:
        wanted.append((body_start, body_start + body_lines - 1))
        note = "no faulting line inside it in the evidence: from the top of its body"
    around, about_class = _class_context(tree, span)
    text = excerpt(content, [*around, *wanted], (min([first, *(a for a, _ in around)]), last))
    if doc:
        text = text.replace(f"[lines {doc[0]}-", f"[docstring and lines {doc[0]}-", 1)
    return text, f"{note}; {about_class}" if about_class else note


def outline(content: str) -> str:
    """The top-level functions and classes (and their methods) of a Python file, with their lines."""
    try:
        tree = ast.parse(content)
    except (SyntaxError, ValueError):
        return ""
    entries = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            entries.append(f"{node.lineno:>5}\t{'class' if isinstance(node, ast.ClassDef) else 'def'} {node.name}")
            if isinstance(node, ast.ClassDef):
                entries += [f"{m.lineno:>5}\t    def {m.name}" for m in node.body
                            if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    shown = entries[:OUTLINE_ENTRIES]
    return "\n".join(shown + ([f"[{len(entries) - OUTLINE_ENTRIES} more]"] if len(entries) > OUTLINE_ENTRIES else []))


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
                  log_budget_tokens: int, budget_tokens: int | None = None, reserved_tokens: int = 0) -> ContextPack:
    """The first prompt's sections. The code the evidence points at comes first in the budget; the logs get
    `log_budget_tokens` or what is left of `budget_tokens` (the whole first prompt, of which `reserved_tokens`
    are the system prompt, the tools and the scope note), whichever is less, and never less than the
    minimum the condenser needs to keep every distinct error."""
    incident_section = Section("Incident", redact(_incident_text(incident)), "incident payload")
    # Each MCP result redacted and masked once: the faulting lines and the condensation read the same lines.
    cleaned = {label: redact(text) for label, text in mcp_texts.items()}
    masks = {label: mask(text) for label, text in cleaned.items()}
    faults: dict[str, list[int]] = {}
    found = [*faulting_lines(_incident_text(incident), tracked),
             *(hit for label, text in cleaned.items() for hit in faulting_lines(text, tracked, masks[label]))]
    for path, line in found:
        faults.setdefault(path, []).append(line)
    code, implicated = _code_sections(incident, read, tracked, faults, redact)
    for body_lines in SHORTER_BODIES:  # over the budget: functions no faulting line points into show less
        spent = reserved_tokens + _tokens(incident_section.render()) + sum(_tokens(x.render()) for x in code)
        if budget_tokens is None or spent + MIN_LOG_TOKENS + COMMIT_TOKENS <= budget_tokens:
            break
        code, implicated = _code_sections(incident, read, tracked, faults, redact, body_lines)
    commit: list[Section] = []
    if incident.suspect.commit:
        body = redact(commit_text) if commit_text else "(this commit is not in the checkout's history)"
        commit.append(Section(f"Suspect commit (git show {incident.suspect.commit})", body,
                              "git history" if commit_text else None))
    fixed_tokens = sum(_tokens(x.render()) for x in (incident_section, *code, *commit))
    log_tokens = log_budget_tokens
    if budget_tokens is not None:
        log_tokens = max(MIN_LOG_TOKENS, min(log_budget_tokens, budget_tokens - reserved_tokens - fixed_tokens))
    logs_sections, logs = _log_sections(mcp_texts, cleaned, masks, tracked, log_tokens)
    sections = (incident_section, *logs_sections, *code, *commit)
    tokens = {"reserved": reserved_tokens, "incident": _tokens(incident_section.render()),
              "logs": sum(_tokens(x.render()) for x in logs_sections), "code": sum(_tokens(x.render()) for x in code),
              "commit": sum(_tokens(x.render()) for x in commit)}
    tokens["total"] = sum(tokens.values())
    if budget_tokens is not None:
        tokens["budget"] = budget_tokens
    return ContextPack(sections, tuple(logs), frozenset(implicated), tokens)


MIN_LOG_TOKENS = 250
COMMIT_TOKENS = 500  # kept for the culprit commit when the budget decides how much of a function to show
SHORTER_BODIES = (120, 60)  # lines of a function's body shown from its top when the first view is too long


def _tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def first_prompt_tokens(text: str, tools: Sequence[Mapping[str, Any]] = ()) -> int:
    """Estimated tokens of a prompt part: its text and the JSON of the tools offered with it."""
    import json
    return _tokens(text) + (_tokens(json.dumps(list(tools), separators=(",", ":"))) if tools else 0)


def _log_sections(mcp_texts: Mapping[str, str], cleaned: Mapping[str, str], masks: Mapping[str, MaskedLog],
                  tracked: Sequence[str], log_tokens: int) -> tuple[list[Section], list[dict[str, Any]]]:
    sections: list[Section] = []
    logs: list[dict[str, Any]] = []
    share = CHARS_PER_TOKEN * log_tokens // max(len(mcp_texts), 1)
    for label, text in mcp_texts.items():
        clean = cleaned[label]
        if len(clean) <= share:  # small results (an incident record, a short query) are kept as they are
            logs.append({"source": label, "chars_before": len(text), "chars_after": len(clean), "condensed": False})
            sections.append(Section(f"Incident data from MCP: {label}", clean, f"mcp {label}"))
            continue
        condensed = condense(clean, share, tracked, masks[label])
        logs.append({"source": label, "chars_before": len(text), "chars_after": condensed.chars_after,
                     "condensed": True, "lines": condensed.lines, "templates": condensed.templates,
                     "distinct_errors": condensed.errors, "distinct_traces": condensed.traces,
                     "repo_files": list(condensed.repo_files), "first": condensed.first, "last": condensed.last,
                     "truncated": condensed.truncated})
        sections.append(Section(f"Incident data from MCP: {label} (condensed)", condensed.text, f"mcp {label}"))
    return sections, logs


def _code_sections(incident: Incident, read: Callable[[str], str | None], tracked: Sequence[str],
                   faults: Mapping[str, list[int]], redact: Callable[[str], str],
                   body_lines: int = MAX_FILE_LINES) -> tuple[list[Section], set[str]]:
    """Each suspect function around its faulting lines, each suspect file and each file a stack frame names
    around theirs (with the functions those lines are in), else its outline."""
    implicated: set[str] = set()
    code: list[Section] = []
    shown: dict[str, list[tuple[int, int]]] = {}  # the spans the suspect functions show, per file
    for function in incident.suspect.functions:
        candidates = [p for p in incident.suspect.files if p in tracked] + \
                     [p for p in tracked if p.endswith(".py") and p not in incident.suspect.files]
        for path in candidates:
            content = read(path)
            span = locate_function(content or "", function)
            if content and span:
                implicated.add(path)
                view, note = function_view(content, span, faults.get(path, []), body_lines)
                shown.setdefault(path, []).append(span)
                code.append(Section(f"Suspect function {function} in {path}:{span[0]}-{span[1]} ({note})",
                                    redact(view)))
                break
        else:
            code.append(Section(f"Suspect function {function}", "(not found in tracked Python files)"))
    for path in [*incident.suspect.files, *(p for p in faults if p not in incident.suspect.files)]:
        content = read(path) if path in tracked else None
        if content is None:
            if path in incident.suspect.files:
                code.append(Section(f"Suspect file {path}", "(not found in the repository)"))
            continue
        if path in incident.suspect.files:
            implicated.add(path)  # a file only a log line names is shown, never made editable by it
        elsewhere = [f for f in faults.get(path, []) if not any(a <= f <= b for a, b in shown.get(path, []))]
        where = _enclosing(content, elsewhere)
        title = f"Suspect file {path}" if path in incident.suspect.files else f"File {path} (named by a stack frame)"
        code.append(Section(f"{title}{f': {where}' if where else ''}", redact(_file_view(content, elsewhere))))
    return code, implicated


def _enclosing(content: str, lines: Sequence[int]) -> str:
    """`line 41 in run, line 88 in Worker.stop`: the functions the faulting lines are in."""
    if not lines:
        return ""
    try:
        tree = ast.parse(content)
    except (SyntaxError, ValueError):
        return ", ".join(f"line {n}" for n in lines[:8])
    named = []
    for number in lines[:8]:
        best, best_name = None, ""
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= number <= (
                    node.end_lineno or node.lineno) and (best is None or node.lineno > best.lineno):
                best = node
                cls = _class_of(tree, (node.lineno, node.end_lineno or node.lineno))
                best_name = f"{cls.name}.{node.name}" if cls else node.name
        named.append(f"line {number} in {best_name}" if best else f"line {number}")
    return ", ".join(named)


def _file_view(content: str, faults: Sequence[int]) -> str:
    """A file the evidence names: the lines around its faulting lines, else (no blind head of the file) its
    outline; a file that is not Python, its first lines."""
    parts = []
    if faults:
        parts.append(excerpt(content, [(f - WINDOW, f + WINDOW) for f in faults]))
    listed = outline(content)
    if listed:
        parts.append("Outline (read_file shows any part):\n" + listed)
    if not parts:
        parts.append(numbered(content, 1, min(MAX_FILE_LINES, 120)))
    return "\n\n".join(parts)


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

