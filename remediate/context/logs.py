"""Incident logs condensed to what a model can afford.

Repeated lines become templates with counts (drain3's log-template miner) and the times of their first and
last occurrence. Every distinct error and every distinct stack trace is kept, a trace with its first and
last frames, and frames are mapped to files of the repository. The result fits a character budget.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_TIMESTAMP = re.compile(
    r"^\s*\[?(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})\]?\s*")
_ERROR_LEVEL = re.compile(r"\b(?:ERROR|FATAL|CRITICAL|CRIT|PANIC|SEVERE|EMERG|ALERT)\b|\blevel=\"?(?:error|fatal)\b"
                          r"|\"level\":\s*\"(?:error|fatal|critical)\"|^panic: |\bOOMKilled\b")
_WARN_LEVEL = re.compile(r"\b(?:WARN|WARNING)\b|\blevel=\"?warn")
_EXCEPTION = re.compile(r"^\s*(?:Caused by: )?(?:[\w$]+\.)*[A-Z][\w$]*(?:Error|Exception|Exit|Interrupt|Panic)\b"
                        r"(?::|$)")
_TRACE_START = re.compile(r"^\s*(?:Traceback \(most recent call last\):|goroutine \d+ \[[\w ]+\]:)")
_FRAME_PATTERNS = (
    re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S+))?'),  # Python
    re.compile(r"^\s*at (?P<func>[\w$.<>/]+)\((?P<file>[\w$.-]+):(?P<line>\d+)\)"),  # JVM
    re.compile(r"^\s*at (?:(?P<func>[^\s(]+) \()?(?P<file>[^\s():]+):(?P<line>\d+):\d+\)?$"),  # Node.js
    re.compile(r"^\s*(?P<file>/[^\s:]+\.go):(?P<line>\d+)"),  # Go
)
_TRACE_CONTINUATION = re.compile(r"^\s*(?:\.\.\. \d+ more|Caused by: |During handling of the above|The above "
                                 r"exception was|[\w./]+\([^)]*\)$)")
KEEP_FIRST_FRAMES, KEEP_LAST_FRAMES = 2, 3
_DIGITS = re.compile(r"\d+")
_VARIABLE = re.compile(r"\b[0-9a-fA-F]{8,}\b|\d+")  # what differs between lines of one template


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    func: str
    text: tuple[str, ...]  # the frame's line and, for Python, its source line
    repo_path: str | None = None


@dataclass
class Group:
    """One template, error or trace: what it looks like, how often, when first and last."""
    example: str
    count: int = 0
    first: str | None = None
    last: str | None = None
    frames: list[Frame] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)  # a trace's lines after its frames (the exception)
    order: int = 0
    cluster: int | None = None  # the drain3 cluster of a template
    tokens: list[str] | None = None  # the example's words, with those that varied replaced by <*>

    def observe(self, body: str) -> None:
        words = body.split()
        if self.tokens is None:
            self.tokens = words
        elif len(words) != len(self.tokens):
            self.tokens = []  # a different shape joined the cluster: drain3's own template is used
        elif self.tokens:
            self.tokens = [a if a == b else "<*>" for a, b in zip(self.tokens, words, strict=True)]

    def seen(self, timestamp: str | None) -> None:
        self.count += 1
        if timestamp:
            self.first = self.first or timestamp
            self.last = timestamp

    def when(self) -> str:
        if not self.first:
            return ""
        return f" (at {self.first})" if self.first == self.last else f" (first {self.first}, last {self.last})"


@dataclass(frozen=True)
class Condensed:
    text: str
    chars_before: int
    chars_after: int
    lines: int
    templates: int
    errors: int
    traces: int
    repo_files: tuple[str, ...]  # repository files stack frames point at
    first: str | None
    last: str | None
    truncated: bool
    repo_lines: tuple[tuple[str, int], ...] = ()  # (repository file, line) of every frame that points into it


class _Miner:
    """drain3 behind a cache: lines that differ only in digits are mined once."""

    def __init__(self) -> None:
        from drain3 import TemplateMiner
        from drain3.template_miner_config import TemplateMinerConfig

        logging.getLogger("drain3").setLevel(logging.WARNING)
        config = TemplateMinerConfig()
        config.drain_sim_th = 0.5
        config.parametrize_numeric_tokens = True
        self.miner = TemplateMiner(config=config)
        self.cache: dict[str, int] = {}

    def cluster(self, line: str) -> int:
        key = _VARIABLE.sub("0", line)
        cluster = self.cache.get(key)
        if cluster is None:
            cluster = self.miner.add_log_message(line)["cluster_id"]
            self.cache[key] = cluster
        else:
            self.miner.drain.id_to_cluster[cluster].size += 1
        return cluster

    def template(self, cluster: int) -> str:
        return self.miner.drain.id_to_cluster[cluster].get_template()


def split_timestamp(line: str) -> tuple[str | None, str]:
    found = _TIMESTAMP.match(line)
    return (found.group("ts"), line[found.end():]) if found else (None, line)


def parse_frame(line: str) -> Frame | None:
    for pattern in _FRAME_PATTERNS:
        found = pattern.match(line)
        if found:
            return Frame(found.group("file"), int(found.group("line")), found.groupdict().get("func") or "",
                         (line.rstrip(),))
    return None


def repo_file_for(frame: Frame, tracked: Sequence[str]) -> str | None:
    """The tracked file a frame names: the longest path suffix in common, for absolute paths from servers
    (/srv/app/users/service.py) and for JVM frames (package path from the function, file name)."""
    path = frame.file.replace("\\", "/")
    if "/" not in path and frame.func and "." in frame.func:
        package = frame.func.split(".")[:-2]
        path = "/".join([*package, path])
    parts = [p for p in path.split("/") if p not in ("", ".")]
    best, best_len = None, 0
    for candidate in tracked:
        candidate_parts = candidate.split("/")
        n = 0
        while n < min(len(parts), len(candidate_parts)) and parts[-1 - n] == candidate_parts[-1 - n]:
            n += 1
        if n > best_len or (n == best_len and best is not None and len(candidate) < len(best)):
            best, best_len = candidate, n
    return best if best_len and (best_len >= 2 or best_len == len(parts)) else None


_LINE_KEYS = ("line", "message", "msg", "log", "body", "text", "content")
_TIME_KEYS = ("timestamp", "ts", "time", "@timestamp", "date", "datetime")


def json_log_lines(text: str) -> list[str] | None:
    """Log entries inside a JSON result, as MCP servers for Loki, Datadog or Elasticsearch return them
    (`{"data": [{"timestamp": ..., "line": ...}]}` and the like): the largest list of objects carrying a
    line, as text lines in time order with the timestamp in front. None when the text is not such JSON."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    best: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            entries = [item for item in node if isinstance(item, dict) and _first(item, _LINE_KEYS) is not None]
            if len(entries) > len(best) and len(entries) >= len(node) / 2:
                best = entries
            stack.extend(item for item in node if isinstance(item, (dict, list)))
    if not best:
        return None
    rows = []
    for index, entry in enumerate(best):
        line = str(_first(entry, _LINE_KEYS))
        when = _iso(_first(entry, _TIME_KEYS))
        continuation = line[:1].isspace() or _TRACE_START.match(line) or _EXCEPTION.match(line) or parse_frame(line)
        bare = not when or continuation or split_timestamp(line)[0]  # trace lines stay as the runtime wrote them
        rows.append((when or "", index, line if bare else f"{when} {line}"))
    if all(when for when, _, _ in rows):
        rows.sort()
    return [line for _, _, line in rows]


def _first(entry: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, (str, int, float)) and value != "":
            return value
    return None


def _iso(value: Any) -> str | None:
    """A timestamp as RFC 3339: epoch seconds, milliseconds or nanoseconds (Loki), or already a string."""
    if value is None:
        return None
    text = str(value)
    if not text.replace(".", "", 1).isdigit():
        return text
    number = float(text)
    seconds = number / 1e9 if number > 1e17 else number / 1e3 if number > 1e11 else number
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# The masker in front of everything: digits and hex letters become 0, so lines that differ only in numbers, ids
# and hashes share one key. Each distinct key is looked at once; only the lines of keys that may be special (an
# error level, an exception, a trace, a stack frame) are looked at one by one.
_MASK = str.maketrans("0123456789abcdefABCDEF", "0" * 22)
# Literals one of which every line the per-line rules treat specially holds (levels, exceptions, trace starts,
# frames of each runtime), masked as the keys are.
_SPECIAL = tuple(n.translate(_MASK) for n in (
    "ERROR", "FATAL", "CRIT", "PANIC", "SEVERE", "EMERG", "ALERT", "level=", '"level"', "panic: ", "OOMKilled",
    "Error", "Exception", "Exit", "Interrupt", "Panic", "Traceback (most recent call last):", "goroutine ",
    'File "', "at ", ".go:"))
_SAMPLES = 4096  # lines, spread over the log, whose words tell which parts of a template vary


@dataclass(frozen=True)
class MaskedLog:
    lines: list[str]
    keys: list[str]  # each line masked
    counts: dict[str, int]

    @classmethod
    def of(cls, lines: list[str], text: str | None = None) -> MaskedLog:
        """`text`: what `lines` are the splitlines() of, when they are (masking leaves line breaks alone)."""
        from collections import Counter

        keys = text.translate(_MASK).splitlines() if text is not None else \
            "\n".join(lines).translate(_MASK).split("\n")
        if len(keys) != len(lines):  # a line held a line break (JSON entries may): mask one by one
            keys = [line.translate(_MASK) for line in lines]
        return cls(lines, keys, Counter(keys))

    def indices(self, wanted: set[str]) -> list[int]:
        return [i for i, key in enumerate(self.keys) if key in wanted] if wanted else []


def mask(text: str) -> MaskedLog:
    """A log's lines (its JSON entries, else its text lines) with their masked keys: made once, read by both
    faulting_lines and condense."""
    entries = json_log_lines(text)
    return MaskedLog.of(entries or text.splitlines(), None if entries else text)


def condense(text: str, max_chars: int, tracked: Sequence[str] = (), masked: MaskedLog | None = None) -> Condensed:
    """`masked`: mask(text), when the caller has it already."""
    masked = masked or mask(text)
    lines = masked.lines
    miner = _Miner()
    templates: dict[int, Group] = {}
    errors: dict[int, Group] = {}
    traces: dict[tuple[str, ...], Group] = {}
    special = {key for key in masked.counts if any(needle in key for needle in _SPECIAL)}
    consumed: set[int] = set()  # lines a trace or an error took: no template's
    loose: list[int] = []  # lines of special keys that are plain lines after all
    i_next = 0
    for i in masked.indices(special):
        if i < i_next:
            continue  # inside a trace already read
        raw = lines[i]
        if not raw.strip():
            continue
        timestamp, body = split_timestamp(raw)
        frames_follow = i + 1 < len(lines) and parse_frame(lines[i + 1]) is not None
        if _TRACE_START.match(body) or ((_EXCEPTION.match(body) or _ERROR_LEVEL.search(body)) and frames_follow):
            i_next, trace = _read_trace(lines, i + 1, body)
            consumed.update(range(i, i_next))
            key = (_DIGITS.sub("0", trace.example), *(_DIGITS.sub("0", line) for line in trace.tail),
                   *(f"{f.file}:{f.func}" for f in trace.frames))
            group = traces.setdefault(key, trace)
            if group is trace:
                trace.order = i
            group.seen(timestamp)
            continue
        if _ERROR_LEVEL.search(body) or _EXCEPTION.match(body):
            consumed.add(i)
            cluster = miner.cluster(body)
            group = errors.get(cluster)
            if group is None:
                group = errors[cluster] = Group(raw.rstrip(), order=i, cluster=cluster)
            group.seen(timestamp)
            continue
        loose.append(i)
    _templates(masked, special, consumed, loose, miner, templates)
    first_seen, last_seen = _bounds(lines)

    repo_files: list[str] = []
    repo_lines: list[tuple[str, int]] = []
    for trace in traces.values():
        trace.frames = [_mapped(f, tracked) for f in trace.frames]
        for frame in trace.frames:
            if frame.repo_path and frame.repo_path not in repo_files:
                repo_files.append(frame.repo_path)
            if frame.repo_path and (frame.repo_path, frame.line) not in repo_lines:
                repo_lines.append((frame.repo_path, frame.line))
    rendered, truncated = _render(miner, templates, errors, traces, repo_files, len(lines), len(text),
                                  first_seen, last_seen, max_chars)
    return Condensed(rendered, len(text), len(rendered), len(lines), len(templates), len(errors), len(traces),
                     tuple(repo_files), first_seen, last_seen, truncated, tuple(repo_lines))


def _templates(masked: MaskedLog, special: set[str], consumed: set[int], loose: list[int], miner: _Miner,
               templates: dict[int, Group]) -> None:
    """Every other line into a template: per key its first and last line and its count, each key mined once;
    keys drain3 puts in one cluster are one template."""
    lines, keys = masked.lines, masked.keys
    counts = dict(masked.counts)
    for i in consumed:
        counts[keys[i]] -= 1
    touched = {keys[i] for i in consumed if keys[i] not in special}
    plain = {key for key, n in counts.items() if n > 0 and key.strip() and key not in special}
    firsts: dict[str, int] = {}
    lasts: dict[str, int] = {}
    exact = plain & touched  # keys some of whose lines a trace took: their own lines found one by one
    exact_firsts: dict[str, int] = {}
    exact_lasts: dict[str, int] = {}
    if exact:
        for i in masked.indices(exact):
            if i not in consumed:
                exact_firsts.setdefault(keys[i], i)
                exact_lasts[keys[i]] = i
        firsts.update(exact_firsts)
        lasts.update(exact_lasts)
    if plain - exact:  # every key's first and last line in two passes at C speed; only plain keys are read
        lasts.update({key: i for i, key in enumerate(keys)})
        firsts.update({key: i for i, key in zip(reversed(range(len(keys))), reversed(keys), strict=True)})
        for key in exact:  # a trace's lines are not theirs: as found one by one above
            lasts[key], firsts[key] = exact_lasts[key], exact_firsts[key]
    samples: dict[str, list[int]] = {}
    for i in range(0, len(keys), max(len(keys) // _SAMPLES, 1)):
        if keys[i] in plain and i not in consumed:
            samples.setdefault(keys[i], []).append(i)
    runs = [(firsts[key], key) for key in plain]
    runs += [(i, None) for i in loose]  # single lines
    latest: dict[int, int] = {}  # cluster -> its last line
    for first, key in sorted(runs, key=lambda run: run[0]):
        _, body = split_timestamp(lines[first])
        cluster = miner.cluster(body)
        group = templates.get(cluster)
        if group is None:
            group = templates[cluster] = Group(lines[first].rstrip(), order=first, cluster=cluster)
        group.seen(split_timestamp(lines[first])[0])
        if key is None:
            group.observe(body)
            latest[cluster] = max(latest.get(cluster, first), first)
            continue
        group.count += counts[key] - 1
        latest[cluster] = max(latest.get(cluster, first), lasts[key])
        for index in sorted({first, lasts[key], *samples.get(key, [])}):
            group.observe(split_timestamp(lines[index])[1])
    for cluster, last in latest.items():
        group = templates[cluster]
        group.last = split_timestamp(lines[last])[0] or group.last


def _bounds(lines: list[str]) -> tuple[str | None, str | None]:
    """The first and the last timestamp of the log."""
    first = next((ts for ts in (split_timestamp(line)[0] for line in lines[:10_000]) if ts), None)
    last = next((ts for ts in (split_timestamp(line)[0] for line in reversed(lines[-10_000:])) if ts), None)
    return first, last


def faulting_lines(text: str, tracked: Sequence[str], masked: MaskedLog | None = None) -> list[tuple[str, int]]:
    """(repository file, line) of every stack frame and file:line reference in `text` that points into the
    repository. `masked`: mask(text), when the caller has it already."""
    found: list[tuple[str, int]] = []
    if not tracked:
        return found
    masked = masked or mask(text)
    lines = masked.lines
    wanted = {key for key in masked.counts if _MASKED_FILE_LINE.search(key) or any(
        needle in key for needle in _FRAME_NEEDLES)}
    for i in masked.indices(wanted):
        line = lines[i]
        frames = [parse_frame(line)] + [Frame(m.group("file"), int(m.group("line")), "", ())
                                        for m in _FILE_LINE.finditer(line)]
        for frame in frames:
            path = repo_file_for(frame, tracked) if frame else None
            if path and frame and (path, frame.line) not in found:
                found.append((path, frame.line))
        if len(found) >= 50:
            break
    return found[:50]


_FILE_LINE = re.compile(r"(?P<file>[\w./-]+\.[A-Za-z]{1,5}):(?P<line>\d{1,6})\b")  # app/x.py:57 in any text
_MASKED_FILE_LINE = re.compile(r"\.[A-Za-z0]{1,5}:0")  # the same, masked
_FRAME_NEEDLES = tuple(n.translate(_MASK) for n in ('File "', "at ", ".go:"))


def _read_trace(lines: list[str], i: int, header: str) -> tuple[int, Group]:
    trace = Group(header.rstrip())
    in_frames = False
    while i < len(lines):
        line = lines[i]
        frame = parse_frame(line)
        if frame is not None:
            trace.frames.append(frame)
            in_frames = True
            i += 1
            continue
        if in_frames and trace.frames and line.startswith("    ") and not split_timestamp(line)[0] \
                and len(trace.frames[-1].text) == 1 and trace.frames[-1].file.endswith(".py"):
            last = trace.frames[-1]
            trace.frames[-1] = Frame(last.file, last.line, last.func, (*last.text, line.rstrip()))
            i += 1
            continue
        if _TRACE_CONTINUATION.match(line) or (_EXCEPTION.match(line) and not split_timestamp(line)[0]):
            trace.tail.append(line.strip())
            i += 1
            if _EXCEPTION.match(line) and not line.lstrip().startswith("Caused by"):
                in_frames = False
                # A Python trace ends at its exception line; JVM traces go on with "Caused by".
                if i < len(lines) and parse_frame(lines[i]) is None and not _TRACE_CONTINUATION.match(lines[i]):
                    break
            continue
        break
    return i, trace


def _mapped(frame: Frame, tracked: Sequence[str]) -> Frame:
    path = repo_file_for(frame, tracked) if tracked else None
    if path is None:
        return frame
    note = f"    [repository file: {path}:{frame.line}]"
    return Frame(frame.file, frame.line, frame.func, (*frame.text[:1], note, *frame.text[1:]), path)


def _render_trace(trace: Group, first: int, last: int) -> list[str]:
    out = [f"[x{trace.count}]{trace.when()} {trace.example}" if trace.count > 1 else trace.example]
    frames = trace.frames
    shown = frames if len(frames) <= first + last else [*frames[:first], None, *frames[-last:]]
    for frame in shown:
        if frame is None:
            out.append(f"  ... {len(frames) - first - last} frames omitted ...")
        else:
            out.extend(frame.text)
    out.extend(trace.tail)
    return out


def _render(miner: _Miner, templates: dict[int, Group], errors: dict[int, Group],
            traces: dict[tuple[str, ...], Group], repo_files: list[str], n_lines: int, n_chars: int,
            first: str | None, last: str | None, max_chars: int) -> tuple[str, bool]:
    span = f", {first} to {last}" if first else ""
    header = (f"{n_lines} log lines ({n_chars} characters{span}) condensed: {len(errors)} distinct errors, "
              f"{len(traces)} distinct stack traces, {len(templates)} templates of other lines. "
              "[xN] counts occurrences; <*> marks a variable part.")
    if repo_files:
        header += "\nRepository files in stack traces: " + ", ".join(repo_files)
    kept_frames = (KEEP_FIRST_FRAMES, KEEP_LAST_FRAMES)
    for first_frames, last_frames in (kept_frames, (1, 1)):
        problems: list[tuple[int, list[str]]] = []
        for error in errors.values():
            line = f"[x{error.count}]{error.when()} {error.example}" if error.count > 1 else error.example
            problems.append((error.order, [line]))
        for trace in traces.values():
            problems.append((trace.order, _render_trace(trace, first_frames, last_frames)))
        problem_text = "\n".join(line for _, block in sorted(problems) for line in block)
        if len(header) + len(problem_text) + 400 <= max_chars:
            break
    truncated = False
    titles = ("== Errors and stack traces, each distinct one, in order of first appearance ==",
              "== Other lines as templates, in order of first appearance ==")
    reserve = 80  # the line saying how many templates were left out
    fixed = len(header) + sum(len(x) for x in titles) + 4 + reserve
    if fixed + len(problem_text) + len("(none)") > max_chars:
        room = max(max_chars - fixed - 60, 0)
        problem_text = problem_text[:room] + "\n[... errors cut to fit the log budget ...]"
        truncated = True
    others = _pick_templates(miner, templates.values(), max_chars - fixed - len(problem_text or "(none)") - 1)
    sections = [header, titles[0], problem_text or "(none)", titles[1],
                "\n".join(text for _, text in sorted(others)) or "(none)"]
    omitted = len(templates) - len(others)
    if omitted:
        truncated = True
        sections.append(f"[{omitted} rarer templates omitted to fit the log budget]")
    return "\n".join(sections)[:max_chars], truncated


def _pick_templates(miner: _Miner, groups: Iterable[Group], budget: int) -> list[tuple[int, str]]:
    """Warnings first, then the most frequent, as many as fit; shown in order of first appearance."""
    rendered = []
    for group in groups:
        if group.count == 1:
            body = group.example
        elif group.tokens:
            body = " ".join(group.tokens)
        else:
            body = miner.template(group.cluster) if group.cluster is not None else group.example
        rank = (0 if _WARN_LEVEL.search(group.example) else 1, -group.count, group.order)
        rendered.append((rank, group.order, f"[x{group.count}]{group.when()} {body}" if group.count > 1 else body))
    picked, used = [], 0
    for _, order, text in sorted(rendered):
        if used + len(text) + 1 > budget:
            continue
        picked.append((order, text))
        used += len(text) + 1
    return picked
