"""Python sources parsed once: selection, the test items and the proof ask many questions of the same files,
on every run. Pure; callers only read the trees."""

from __future__ import annotations

import ast
import functools


@functools.lru_cache(maxsize=4096)
def parsed(path: str, source: str) -> ast.Module | None:
    """A source's syntax tree (None: it does not parse)."""
    try:
        return ast.parse(source, filename=path)
    except (SyntaxError, ValueError):
        return None


@functools.lru_cache(maxsize=4096)
def nodes(path: str, source: str) -> tuple[ast.AST, ...]:
    """Every node of a source's tree, walked once."""
    tree = parsed(path, source)
    return tuple(ast.walk(tree)) if tree is not None else ()
