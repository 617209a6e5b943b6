"""architect's code rules: regexes (RE2, linear-time) on the lines a change adds. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pathspec
import re2


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
        return bool(self._regex.search(line))  # RE2: linear in the line, however long


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


def added_lines(before: str | None, after: str | None) -> Iterator[tuple[int, str]]:
    """The lines of `after` that `before` does not have (as many times as they are new), numbered as in `after`.
    Lines are split on "\\n" only: a form feed, a vertical tab or U+2028 inside a line keeps the whole line in
    view, where a diff's line splitting would hide what follows it."""
    if after is None:
        return
    old = Counter((before or "").split("\n"))
    for number, line in enumerate(after.split("\n"), 1):
        if old[line] > 0:
            old[line] -= 1
            continue
        if line:
            yield number, line


def findings(rules: Iterable[CodeRule], path: str, before: str | None, after: str | None,
             before_path: str | None = None) -> list[Finding]:
    """What the rules that cover `path` find in the lines the change adds to it. A file renamed from a path a rule
    does not cover is new to that rule: all of its lines count."""
    found = []
    for rule in rules:
        if not rule.applies_to(path):
            continue
        old = before if before_path is None or rule.applies_to(before_path) else None
        found += [Finding(rule, path, number, text) for number, text in added_lines(old, after) if rule.matches(text)]
    return sorted(found, key=lambda f: (f.line, f.rule.pattern))
