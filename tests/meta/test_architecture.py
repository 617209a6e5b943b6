"""The dependency rule of docs/architecture.md, checked on the sources: a unit (a top-level module or a
package) imports only units listed before it in LAYERS, and never one of its own layer's siblings that
comes later. Imports inside functions count too."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "remediate"
# Bottom first. Keep in step with docs/architecture.md.
LAYERS = ["outcome", "records", "errors", "secrets", "inert", "config", "processes", "gitops", "actions", "telemetry",
          "incident", "run", "guard", "mcp", "context", "verify", "checks", "agent", "report", "outputs", "deliver",
          "followup", "pipeline", "cli", "warm", "__main__", "__init__"]


def _unit(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "remediate":
                found.update(f"remediate.{alias.name}" for alias in node.names if alias.name != "__version__")
            elif node.module.startswith("remediate."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("remediate."))
    return found


def test_every_unit_is_placed_in_a_layer():
    units = {p.stem if p.parent == PACKAGE else p.relative_to(PACKAGE).parts[0] for p in PACKAGE.rglob("*.py")}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS and docs/architecture.md"


def test_units_import_only_what_comes_before_them():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        source_unit = relative.stem if len(relative.parts) == 1 else relative.parts[0]
        for target in _imports(path):
            target_unit = _unit(target)
            if target_unit != source_unit and LAYERS.index(target_unit) > LAYERS.index(source_unit):
                broken.append(f"{relative} imports {target}")
    assert broken == []


def test_the_docs_list_the_same_layers():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    listed = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]
    assert [unit.rstrip("/").removesuffix(".py") for unit in listed] == [u for u in LAYERS if not u.startswith("__")]
