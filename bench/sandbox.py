"""What the sandbox costs per test run: the copy of the tree, the run as another user, the sweep, the cleanup.

    sudo .venv/bin/python bench/sandbox.py [--repeat 5]

Measured on the demo service and on a real project's suite (pyasn1's released sdist, downloaded from PyPI into
~/.cache/remediate-bench like bench/selection.py does), each run as the action runs tests: `python -m pytest -q`
with a JUnit report, first directly in the checkout (no sandbox: what remediate did before), then through the
sandbox (a fresh copy, the user switch when root, the sweep and the discard). Medians of --repeat runs after
one unmeasured run of each (the direct runs then find their byte code cached in the checkout, as repeated runs
in a workspace did; a sandboxed run starts from a fresh copy every time, so it compiles the project again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from selection import Project, fetch  # noqa: E402

from remediate.guard.sandbox import Sandbox  # noqa: E402
from remediate.processes import run_bounded  # noqa: E402
from remediate.verify.execute import run_tests  # noqa: E402

PYTEST = [sys.executable, "-m", "pytest"]
ENV = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8"}


def tree_size(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts]
    return len(files), sum(p.stat().st_size for p in files)


def measure(name: str, source: Path, tests: list[str], repeat: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    os.chmod(work, 0o755)
    checkout = work / "checkout"
    shutil.copytree(source, checkout, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    direct, total, copy, run, discard = [], [], [], [], []
    box = Sandbox(ENV, [checkout])
    box.probe(sys.executable)
    passed: set[int] = set()
    try:
        for attempt in range(repeat + 1):
            started = time.perf_counter()
            result = run_tests(checkout, PYTEST, tests, env=ENV, timeout_s=600, launch=run_bounded)
            direct_s = time.perf_counter() - started
            passed.add(result.passed)
            started = time.perf_counter()
            tree = box.copy(checkout)
            copied = time.perf_counter()
            junit = box.scratch()
            result = run_tests(tree, PYTEST, tests, env={}, timeout_s=600,
                               launch=lambda argv, cwd, env, t: box.run(argv, cwd, t, env), junit_dir=junit)
            ran = time.perf_counter()
            box.discard(tree)
            box.discard(junit)
            done = time.perf_counter()
            passed.add(result.passed)
            if attempt == 0:
                continue  # the unmeasured warm-up
            direct.append(direct_s)
            total.append(done - started)
            copy.append(copied - started)
            run.append(ran - copied)
            discard.append(done - ran)
        files, size = tree_size(checkout)
        median = statistics.median
        return {"project": name, "files": files, "bytes": size, "tests_passed": sorted(passed),
                "switched_user": box.identity.switched, "direct_s": round(median(direct), 3),
                "sandboxed_s": round(median(total), 3), "copy_s": round(median(copy), 3),
                "run_and_sweep_s": round(median(run), 3), "discard_s": round(median(discard), 3),
                "overhead_s": round(median(total) - median(direct), 3)}
    finally:
        box.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [measure("demo service", ROOT / "demo" / "sample_service", ["tests"], args.repeat),
            measure("pyasn1 0.6.1", fetch(Project("pyasn1", "0.6.1", ".")), ["tests"], args.repeat)]
    print(json.dumps(rows, indent=1))
    print("| project | files | MB | direct | sandboxed | copy | run + sweep | discard | overhead |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        megabytes = int(r["bytes"]) / 1e6  # type: ignore[call-overload]
        print(f"| {r['project']} | {r['files']} | {megabytes:.1f} | {r['direct_s']} s | {r['sandboxed_s']} s "
              f"| {r['copy_s']} s | {r['run_and_sweep_s']} s | {r['discard_s']} s | {r['overhead_s']} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
