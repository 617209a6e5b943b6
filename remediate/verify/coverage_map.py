"""Which tests run which functions, recorded once on a base commit and used to select tests per function.

Recording: the project's CI runs its suite with per-test coverage contexts (`pytest --cov --cov-context=test`,
pytest-cov) on the default branch, then `python -m remediate coverage-map` turns the `.coverage` file into a
small JSON map: for every measured file, its content hash and, for every function, the tests that ran a line
of it. Selecting: a change confined to function bodies of a file whose hash still matches selects exactly the
tests that ran those functions. Anything else (module-level code, signatures, decorators, a function that
also ran outside any test, at import or collection time, a file edited since the map was made, a file the map
does not know) is left to the import graph: the map never narrows what it cannot vouch for.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODULE = "<module>"


def digest(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8", errors="surrogateescape")).hexdigest()


def units(source: str) -> dict[str, tuple[int, int]] | None:
    """Functions and methods (nested in classes, not in functions) with the line span of their body.
    None when the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found: dict[str, tuple[int, int]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[prefix + node.name] = (node.body[0].lineno, node.end_lineno or node.body[-1].lineno)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(tree.body, "")
    return found


def skeleton(source: str) -> str | None:
    """The module with every unit's body emptied: what runs at import time (imports, constants, class bodies,
    signatures, defaults, decorators). Two versions with equal skeletons differ only inside function bodies."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None

    def strip(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node.body = [ast.Pass()]
            elif isinstance(node, ast.ClassDef):
                strip(node.body)

    strip(tree.body)
    return ast.dump(tree, include_attributes=False)


def _body_text(source: str, span: tuple[int, int]) -> str:
    return "\n".join(source.splitlines()[span[0] - 1: span[1]])


def changed_units(before: str, after: str) -> set[str] | None:
    """The functions whose bodies differ, or None when the change reaches beyond function bodies."""
    before_skeleton, after_skeleton = skeleton(before), skeleton(after)
    if before_skeleton is None or after_skeleton is None or before_skeleton != after_skeleton:
        return None
    old, new = units(before) or {}, units(after) or {}
    return {name for name, span in old.items() if _body_text(before, span) != _body_text(after, new[name])}


def node_id(context: str) -> str | None:
    """pytest-cov's `--cov-context=test` labels: `tests/test_x.py::TestY::test_z[p]|run`."""
    test = context.rsplit("|", 1)[0] if "|" in context else context
    return test if "::" in test else None


def build_map(data_file: Path, repo: Path, commit: str | None) -> dict[str, Any]:
    from coverage import CoverageData

    data = CoverageData(basename=str(data_file))
    data.read()
    repo = repo.resolve()
    files: dict[str, Any] = {}
    for measured in sorted(data.measured_files()):
        path = _in_repo(measured, repo)
        if path is None or path.suffix != ".py":
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        spans = units(source)
        if spans is None:
            continue
        by_unit: dict[str, set[str]] = {}
        outside_tests: set[str] = set()
        for line, contexts in data.contexts_by_lineno(measured).items():
            unit = next((name for name, (start, end) in spans.items() if start <= line <= end), MODULE)
            tests = {t for t in map(node_id, contexts) if t}
            if len(tests) < len(contexts):
                # Run outside any test (at import or collection): a failure there breaks whole modules.
                outside_tests.add(unit)
            if tests:
                by_unit.setdefault(unit, set()).update(tests)
        files[path.relative_to(repo).as_posix()] = {
            "sha1": digest(source), "functions": {k: sorted(v) for k, v in sorted(by_unit.items())},
            "outside_tests": sorted(outside_tests)}
    return {"version": 1, "commit": commit, "files": files}


def _in_repo(measured: str, repo: Path) -> Path | None:
    """The repository file a recorded path names. Data recorded in another checkout (the runner's
    /home/runner/work/... while the action sees /github/workspace) is matched by its longest path suffix."""
    path = Path(measured)
    if path.resolve().is_relative_to(repo):
        return path.resolve()
    for start in range(1, len(path.parts)):
        candidate = repo.joinpath(*path.parts[start:])
        if candidate.is_file():
            return candidate.resolve()
    return None


@dataclass(frozen=True)
class CoverageMap:
    commit: str | None
    files: Mapping[str, Mapping[str, Any]]

    @classmethod
    def load(cls, path: Path) -> CoverageMap:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("files"), dict):
            raise ValueError("not a remediate coverage map (version 1)")
        return cls(data.get("commit"), data["files"])

    def tests_for(self, path: str, before: str, after: str) -> tuple[set[str], str] | None:
        """The tests that ran the changed functions, with why; None when the map cannot vouch for the change."""
        entry = self.files.get(path)
        if entry is None or entry.get("sha1") != digest(before):
            return None
        changed = changed_units(before, after)
        if changed is None or changed & set(entry.get("outside_tests", [])):
            return None  # beyond function bodies, or a function that also runs at import time
        functions = entry.get("functions", {})
        tests = {t for name in changed for t in functions.get(name, [])}
        names = ", ".join(sorted(changed)) or "nothing"
        return tests, f"ran {names} when the coverage map was recorded"
