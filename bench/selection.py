"""Affected-test selection on real projects: recall and time against the full suite.

    .venv/bin/python bench/selection.py [--faults 6] [--seed 7]

For each project: the released source distribution is downloaded from PyPI at run time (into
~/.cache/remediate-bench, never committed), a fault is injected into one function at a time (its body starts
by raising), the full suite runs to learn which tests catch it, and each selection remediate can make for
that one changed file runs on its own:

- imports: test files that import the changed module, directly or not (no map);
- coverage: single tests that ran the changed function, from a coverage map recorded once on the pristine
  tree (pytest-cov per-test contexts, then remediate's coverage-map), falling back to imports where the
  map cannot vouch for the change.

Recall: every test that fails under the full suite is selected (a whole selected file counts for all its
tests). Faults the full suite does not catch are counted, not scored.
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

from remediate.config import TestsConfig  # noqa: E402
from remediate.verify.coverage_map import CoverageMap, build_map  # noqa: E402
from remediate.verify.execute import TestRun, run_tests  # noqa: E402
from remediate.verify.selection import select_affected_tests, select_with_coverage  # noqa: E402

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
BENCH_DEPS = ("pytest==7.4.4", "pytest-cov==7.1.0", "coverage==7.17.4")
MAX_FAILURES = TestsConfig().max_failures  # what the action stops at by default


@dataclass
class FaultResult:
    project: str
    file: str
    function: str
    caught_by: list[str]  # failing tests, as JUnit names
    selected: list[str]  # imports
    recall: bool
    full_s: float
    selected_s: float
    cov_selected: list[str]  # coverage map
    cov_recall: bool
    cov_s: float
    cov_exact: bool  # the coverage selection is exactly the failing tests: no selection with full recall is smaller
    clean_full_s: float  # the suite on correct code, as when the model's fix is right
    clean_cov_s: float  # the coverage selection on correct code
    action_s: float  # the coverage selection as the action runs it: stopped after tests.max_failures failures


def sh(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def bench_python() -> Path:
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    deps = sorted({d for p in PROJECTS for d in p.deps} | set(BENCH_DEPS))
    stamp = venv / "bench-deps.txt"
    if not python.exists():
        sh(sys.executable, "-m", "venv", str(venv))
    if not stamp.exists() or stamp.read_text() != "\n".join(deps):
        sh(str(python), "-m", "pip", "install", "-q", *deps)
        stamp.write_text("\n".join(deps))
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
        if hasattr(tarfile, "data_filter"):
            tar.extractall(CACHE / "src", filter="data")
        else:  # Python before 3.11.4 (Debian bookworm's 3.11.2): refuse what the data filter would
            unsafe = [m.name for m in tar.getmembers() if m.name.startswith("/") or ".." in m.name.split("/")
                      or not (m.isfile() or m.isdir())]
            if unsafe:
                raise RuntimeError(f"{archive}: unsafe members {unsafe[:3]}")
            tar.extractall(CACHE / "src")
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


def junit_name(node: str) -> str:
    """tests/test_x.py::TestY::test_z[p] as pytest's JUnit report names it: tests.test_x.TestY::test_z[p]."""
    parts = node.split("::")
    classname = ".".join([parts[0].removesuffix(".py").replace("/", "."), *parts[1:-1]])
    return f"{classname}::{parts[-1]}"


def covers(selected: list[str], failing: set[str]) -> bool:
    files = {s.removesuffix(".py").replace("/", ".") for s in selected if "::" not in s}
    tests = {junit_name(s) for s in selected if "::" in s}
    # A failing module (a collection error) is named by its dotted path alone.
    return all(f in tests or any(f == m or f.startswith((m + ".", m + "::")) for m in files) for f in failing)


def record_map(python: Path, tree: Path, project: Project) -> tuple[CoverageMap, float]:
    """Per-test coverage of the pristine suite, as the project's CI would record it on its default branch."""
    data = tree / ".coverage"
    data.unlink(missing_ok=True)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree / project.package_root), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--cov={project.package_root}",
                    "--cov-context=test", project.tests], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    built = build_map(data, tree, None)
    data.unlink(missing_ok=True)
    return CoverageMap(None, built["files"]), elapsed


def run_suite(python: Path, tree: Path, project: Project, tests: list[str],
              max_failures: int = 0) -> tuple[TestRun, float]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree / project.package_root), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    run = run_tests(tree, [str(python), "-m", "pytest"], tests or [project.tests],
                    env=env, timeout_s=900, max_failures=max_failures)
    return run, time.monotonic() - started


def bench_project(project: Project, python: Path, faults: int, rng: random.Random) -> tuple[list[FaultResult], int]:
    tree = fetch(project)
    sources = {str(p.relative_to(tree)): p.read_text(encoding="utf-8", errors="replace")
               for p in tree.rglob("*.py")}
    candidates = candidate_functions(tree, project)
    rng.shuffle(candidates)
    coverage, record_s = record_map(python, tree, project)
    _, clean_full_s = run_suite(python, tree, project, [])
    print(f"  coverage map recorded in {record_s:.1f}s ({len(coverage.files)} files); suite on correct code "
          f"{clean_full_s:.1f}s", flush=True)
    results: list[FaultResult] = []
    undetected = 0
    for rel, name, line in candidates:
        if len(results) >= faults or undetected > faults * 4:
            break
        original = inject(tree / rel, line)
        try:
            full, full_s = run_suite(python, tree, project, [])
            failing = set(full.failed_tests)
            if not failing:
                undetected += 1
                continue
            selection = select_affected_tests(sources, [rel])
            selected = [t for t in selection.tests if t.startswith(project.tests)]
            _, selected_s = run_suite(python, tree, project, selected) if selected else (None, 0.0)
            after = {**sources, rel: (tree / rel).read_text(encoding="utf-8")}
            narrowed = select_with_coverage(coverage, sources, after, [rel])
            cov_selected = [t for t in narrowed.tests if t.startswith(project.tests)]
            _, cov_s = run_suite(python, tree, project, cov_selected) if cov_selected else (None, 0.0)
            exact = {junit_name(t) for t in cov_selected if "::" in t} == failing
            _, action_s = (run_suite(python, tree, project, cov_selected, MAX_FAILURES) if cov_selected
                           else (None, 0.0))
            (tree / rel).write_text(original, encoding="utf-8")
            _, clean_cov_s = run_suite(python, tree, project, cov_selected) if cov_selected else (None, 0.0)
            result = FaultResult(project.name, rel, name, sorted(failing), selected, covers(selected, failing),
                                 full_s, selected_s, cov_selected, covers(cov_selected, failing), cov_s, exact,
                                 clean_full_s, clean_cov_s, action_s)
            results.append(result)
            print(f"  {rel}:{name}: {len(failing)} failing tests; imports: {len(selected)} files, recall "
                  f"{'yes' if result.recall else 'NO'}, {selected_s:.1f}s; coverage: {len(cov_selected)} tests, "
                  f"recall {'yes' if result.cov_recall else 'NO'}{', exactly the failing tests' if exact else ''}, "
                  f"{cov_s:.1f}s ({action_s:.1f}s stopping after {MAX_FAILURES} failures); full {full_s:.1f}s; "
                  f"on correct code {clean_cov_s:.1f}s of {clean_full_s:.1f}s",
                  flush=True)
        finally:
            (tree / rel).write_text(original, encoding="utf-8")
    return results, undetected


def _cells(results: list[FaultResult], bold: bool = False) -> str:
    if not results:
        return " | | | | | "
    n = len(results)
    mark = "**" if bold else ""
    imports = (sum(len(r.selected) for r in results) / n, sum(r.recall for r in results) / n,
               sum(r.selected_s / r.full_s for r in results) / n)
    coverage = (sum(len(r.cov_selected) for r in results) / n, sum(r.cov_recall for r in results) / n,
                sum(r.cov_s / r.full_s for r in results) / n)
    exact = sum(r.cov_exact for r in results)
    clean = sum(r.clean_cov_s / r.clean_full_s for r in results) / n
    action = sum(r.action_s / r.full_s for r in results) / n
    return (f"{imports[0]:.1f} | {mark}{imports[1]:.0%}{mark} | {mark}{imports[2]:.0%}{mark} | "
            f"{coverage[0]:.1f} | {mark}{coverage[1]:.0%}{mark} | {mark}{coverage[2]:.0%}{mark} | {exact}/{n} | "
            f"{mark}{action:.0%}{mark} | {mark}{clean:.0%}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faults", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    python = bench_python()
    all_results: list[FaultResult] = []
    rows = ["| project | faults caught | undetected | test files | imports: files (mean) | recall | time vs full | "
            "coverage: tests (mean) | recall | time vs full | exactly the failing tests | time vs full as the action "
            "runs it | time vs full, correct code |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for project in PROJECTS:
        print(f"{project.name} {project.version}", flush=True)
        results, undetected = bench_project(project, python, args.faults, rng)
        all_results += results
        tree = CACHE / "src" / f"{project.name}-{project.version}"
        test_files = len([p for p in (tree / project.tests).rglob("test_*.py")])
        rows.append(f"| {project.name} {project.version} | {len(results)} | {undetected} | {test_files} | "
                    + _cells(results) + " |")
    rows.append(f"| **all** | {len(all_results)} | | | " + _cells(all_results, bold=True) + " |")
    print("\n".join(rows))
    (CACHE / "selection.json").write_text(json.dumps([asdict(r) for r in all_results], indent=1))


if __name__ == "__main__":
    main()
