"""Compile byte code for what a run imports, and nothing else (the container image runs this once).

Every module of this package is imported, and so is every module any of them imports, including the imports
made lazily inside functions, found by reading the sources. What those import in turn follows by itself.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import remediate

# Imported by the repository's own test run inside the container, not by the action.
ALSO = ("pytest", "_pytest.junitxml", "_pytest.python")


def imported_names(package_dir: Path) -> set[str]:
    names: set[str] = set()
    for source in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return names


def main() -> int:
    sys.dont_write_bytecode = False
    package_dir = Path(remediate.__file__).parent
    modules = {m.name for m in pkgutil.walk_packages([str(package_dir)], "remediate.")}
    modules |= imported_names(package_dir) | set(ALSO)
    failed = []
    for name in sorted(modules):
        if name in (__name__, "remediate.warm", "remediate.__main__"):
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            failed.append(f"{name}: {exc}")
    for line in failed:
        print(f"warm: not importable: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
