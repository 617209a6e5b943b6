"""architect's code rules: regexes (RE2, linear-time) on the lines a change adds. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pathspec
import re2

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
MAX_LINE_CHARS = 2000  # a rule looks at this much of a line: a minified megabyte line is no regex workload


@dataclass(frozen=True)
class CodeRule:
    pattern: str
    message: str
    severity: str = "warn"  # warn: told to the model; block: the write is refused
    file_patterns: tuple[str, ...] = ()
    _regex: Any = field(init=False, repr=False, compare=False)
    _paths: pathspec.PathSpec | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re2.compile(self.pattern))
        object.__setattr__(self, "_paths", pathspec.GitIgnoreSpec.from_lines(self.file_patterns)
                           if self.file_patterns else None)

    def applies_to(self, path: str) -> bool:
        return self._paths is None or self._paths.match_file(path)

    def matches(self, line: str) -> bool:
        return bool(self._regex.search(line[:MAX_LINE_CHARS]))


@dataclass(frozen=True)
class Finding:
    rule: CodeRule
    path: str
    line: int
    text: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}: {self.rule.message} (code rule {self.rule.pattern!r})"


def rules_from(configs: Iterable[Any]) -> tuple[CodeRule, ...]:
    return tuple(CodeRule(c.pattern, c.message, c.severity, tuple(c.file_patterns)) for c in configs)


def added_lines(diff: str) -> Iterator[tuple[int, str]]:
    """The lines a unified diff adds, with their numbers in the new file. Hunk bodies are consumed by their
    counts, so an added line that itself starts with `++` is not taken for a file header."""
    old_left = new_left = 0
    number = 0
    for line in diff.splitlines():
        if old_left <= 0 and new_left <= 0:
            hunk = _HUNK.match(line)
            if hunk:
                number = int(hunk.group(3))
                old_left, new_left = int(hunk.group(2) or 1), int(hunk.group(4) or 1)
            continue
        if line.startswith("\\"):
            continue
        if line.startswith("+"):
            yield number, line[1:]
            number += 1
            new_left -= 1
        elif line.startswith("-"):
            old_left -= 1
        else:
            number += 1
            old_left -= 1
            new_left -= 1


def findings(rules: Iterable[CodeRule], path: str, diff: str) -> list[Finding]:
    applicable = [rule for rule in rules if rule.applies_to(path)]
    if not applicable:
        return []
    return [Finding(rule, path, number, text) for number, text in added_lines(diff)
            for rule in applicable if rule.matches(text)]
