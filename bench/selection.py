"""Affected-test selection on real projects: recall and time against the full suite.

    .venv/bin/python bench/selection.py [--faults 6] [--seed 7]

For each project: the released source distribution is downloaded from PyPI at run time (into
~/.cache/remediate-bench, never committed), a fault is injected into one function at a time (its body starts
by raising), the full suite runs to learn which test files catch it, and the selection that
remediate would make for that one changed file runs on its own. Recall: every test file that fails
under the full suite is selected. Faults the full suite does not catch are counted, not scored.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediate.selection import select_affected_tests  # noqa: E402
from remediate.testing import TestRun, run_tests  # noqa: E402

# Outside the repository: pytest looks upward for its configuration, and must find the project's, not ours.
CACHE = Path.home() / ".cache" / "remediate-bench"
FAULT = 'raise RuntimeError("remediate-bench injected fault")'


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    package_root: str  # where the importable package lives ("." or "src")
    tests: str = "tests"
    deps: tuple[str, ...] = ()


PROJECTS = (
    Project("boltons", "25.0.0", "."),
    Project("packaging", "25.0", "src", deps=("pretend==1.0.9",)),
    Project("pyasn1", "0.6.1", "."),
)
# The projects' own suites need an older pytest than remediate pins (boltons' conftest uses a
# hook argument pytest 8 removed); the benchmark gets a venv of its own.
BENCH_DEPS = ("pytest==7.4.4",)


@dataclass
class FaultResult:
    project: str
    file: str
    function: str
    caught_by: list[str]
    selected: list[str]
    recall: bool
    full_s: float
    selected_s: float


def sh(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def bench_python() -> Path:
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        sh(sys.executable, "-m", "venv", str(venv))
        deps = {d for p in PROJECTS for d in p.deps} | set(BENCH_DEPS)
        sh(str(python), "-m", "pip", "install", "-q", *sorted(deps))
    return python


def fetch(project: Project) -> Path:
    tree = CACHE / "src" / f"{project.name}-{project.version}"
    if tree.exists():
        return tree
    sdists = CACHE / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    sh(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
       f"{project.name}=={project.version}", "-d", str(sdists))
    archive = next(sdists.glob(f"{project.name.replace('-', '_')}-{project.version}.tar.gz"), None) or next(
        sdists.glob(f"{project.name}-{project.version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE / "src", filter="data")
    extracted = next((CACHE / "src").glob(f"{project.name.replace('-', '_')}-{project.version}"), None)
    if extracted and extracted != tree:
        extracted.rename(tree)
    return tree


def candidate_functions(tree: Path, project: Project) -> list[tuple[str, str, int]]:
    """(file, qualified name, line of the first body statement) for every function outside the tests."""
    found = []
    for path in sorted((tree / project.package_root).rglob("*.py")):
        rel = str(path.relative_to(tree))
        if rel.startswith(project.tests) or "/tests/" in rel or path.name.startswith("test_"):
            continue
        module = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        for node in ast.walk(module):
            if not isinstance(node, (ast.Module, ast.ClassDef)):
                continue
            for child in node.body:
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    body = child.body
                    first = body[1] if (len(body) > 1 and isinstance(body[0], ast.Expr)
                                        and isinstance(getattr(body[0], "value", None), ast.Constant)) else body[0]
                    prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
                    found.append((rel, prefix + child.name, first.lineno))
    return found


def inject(path: Path, line: int) -> str:
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    target = lines[line - 1]
    indent = target[: len(target) - len(target.lstrip())]
    lines.insert(line - 1, f"{indent}{FAULT}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return original


def failing_files(run: TestRun, tree: Path) -> set[str]:
    files = set()
    for name in run.failed_tests:
        dotted = name.split("::")[0]
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            candidate = "/".join(parts[:end]) + ".py"
            if (tree / candidate).exists():
                files.add(candidate)
                break
    return files


def run_suite(python: Path, tree: Path, project: Project, tests: list[str]) -> tuple[TestRun, float]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree / project.package_root), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    run = run_tests(tree, [str(python), "-m", "pytest"], tests or [project.tests],
                    env=env, timeout_s=900)
    return run, time.monotonic() - started


def bench_project(project: Project, python: Path, faults: int, rng: random.Random) -> tuple[list[FaultResult], int]:
    tree = fetch(project)
    sources = {str(p.relative_to(tree)): p.read_text(encoding="utf-8", errors="replace")
               for p in tree.rglob("*.py")}
    candidates = candidate_functions(tree, project)
    rng.shuffle(candidates)
    results: list[FaultResult] = []
    undetected = 0
    for rel, name, line in candidates:
        if len(results) >= faults or undetected > faults * 4:
            break
        original = inject(tree / rel, line)
        try:
            full, full_s = run_suite(python, tree, project, [])
            caught = failing_files(full, tree)
            if not caught:
                undetected += 1
                continue
            selection = select_affected_tests(sources, [rel])
            selected = [t for t in selection.tests if t.startswith(project.tests)]
            _, selected_s = run_suite(python, tree, project, selected) if selected else (None, 0.0)
            results.append(FaultResult(project.name, rel, name, sorted(caught), selected,
                                       caught <= set(selected), full_s, selected_s))
            print(f"  {rel}:{name}: caught by {len(caught)} files, selected {len(selected)}, "
                  f"recall {'yes' if caught <= set(selected) else 'NO'}, {selected_s:.1f}s vs {full_s:.1f}s",
                  flush=True)
        finally:
            (tree / rel).write_text(original, encoding="utf-8")
    return results, undetected


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faults", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    python = bench_python()
    all_results: list[FaultResult] = []
    rows = ["| project | faults caught by the suite | undetected | test files | selected (mean) | recall | "
            "selected run / full suite |", "|---|---|---|---|---|---|---|"]
    for project in PROJECTS:
        print(f"{project.name} {project.version}", flush=True)
        results, undetected = bench_project(project, python, args.faults, rng)
        all_results += results
        tree = CACHE / "src" / f"{project.name}-{project.version}"
        test_files = len([p for p in (tree / project.tests).rglob("test_*.py")])
        recall = sum(r.recall for r in results) / len(results) if results else 0.0
        ratio = sum(r.selected_s / r.full_s for r in results) / len(results) if results else 0.0
        mean_selected = sum(len(r.selected) for r in results) / len(results) if results else 0.0
        rows.append(f"| {project.name} {project.version} | {len(results)} | {undetected} | {test_files} | "
                    f"{mean_selected:.1f} | {recall:.0%} | {ratio:.0%} |")
    total_recall = sum(r.recall for r in all_results) / len(all_results)
    total_ratio = sum(r.selected_s / r.full_s for r in all_results) / len(all_results)
    rows.append(f"| **all** | {len(all_results)} | | | | **{total_recall:.0%}** | **{total_ratio:.0%}** |")
    print("\n".join(rows))
    (CACHE / "selection.json").write_text(json.dumps([asdict(r) for r in all_results], indent=1))


if __name__ == "__main__":
    main()
