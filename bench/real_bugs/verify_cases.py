"""Check every real-bug case in cases.json: the regression test fails on the buggy release and passes with the fix.

    .venv/bin/python bench/real_bugs/verify_cases.py [--cache DIR] [--only ID ...] [--full-suite]

For each case: the buggy release's source distribution is downloaded from PyPI (`pip download`, into
DIR/sdists, default ~/.cache/remediate-bench, never committed) and unpacked into a fresh tree under DIR/work;
test_patch is applied with `patch -p1` and the regression tests must fail; fix_patch is applied and they must
pass, and so must the rest of test_file. With --full-suite the project's whole suite also runs on the pristine
buggy tree, to compare its wall time with full_suite_seconds. Tests run in a venv of their own under DIR/venvs
(pytest plus the case's pinned deps), with PYTHONPATH set to the tree's package_root, never against an
installed copy. Prints a table; exits 1 if any case does not behave.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases.json"
DEFAULT_CACHE = Path.home() / ".cache" / "remediate-bench"
# The pytest every case was verified with; a case may pin another one in its deps.
PYTEST = "pytest==9.2.0"
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S.*?)(?: - .*)?$")


@dataclass
class Result:
    case_id: str
    buggy_fails: bool = False
    fixed_passes: bool = False
    file_passes: bool = False
    full_suite_s: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.buggy_fails and self.fixed_passes and self.file_passes


def sh(args: list[str], cwd: Path | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_sdist(sdists: Path, project: str, version: str) -> Path | None:
    for path in sorted(sdists.iterdir()) if sdists.exists() else []:
        for ext in (".tar.gz", ".zip"):
            if path.name.endswith(ext) and normalized(path.name[: -len(ext)]) == normalized(f"{project}-{version}"):
                return path
    return None


def fetch_sdist(cache: Path, project: str, version: str) -> Path:
    sdists = cache / "sdists"
    found = find_sdist(sdists, project, version)
    if found:
        return found
    sdists.mkdir(parents=True, exist_ok=True)
    sh([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
        f"{project}=={version}", "-d", str(sdists)])
    found = find_sdist(sdists, project, version)
    if not found:
        raise RuntimeError(f"pip download of {project}=={version} left no sdist in {sdists}")
    return found


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack into dest (emptied first); return the sdist's root folder."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.startswith("/") or ".." in name.split("/"):
                    raise RuntimeError(f"{archive}: unsafe member {name}")
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # Python before 3.11.4: refuse what the data filter would
                unsafe = [m.name for m in tar.getmembers() if m.name.startswith("/") or ".." in m.name.split("/")
                          or not (m.isfile() or m.isdir())]
                if unsafe:
                    raise RuntimeError(f"{archive}: unsafe members {unsafe[:3]}")
                tar.extractall(dest)
    roots = [p for p in dest.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise RuntimeError(f"{archive}: expected one top-level folder, found {[p.name for p in roots]}")
    return roots[0]


def case_python(cache: Path, base_python: str, deps: list[str]) -> Path:
    """A venv with pytest and the case's deps, shared by the cases that need the same."""
    wanted = list(deps) if any(normalized(d.split("==")[0]) == "pytest" for d in deps) else [PYTEST, *deps]
    wanted = sorted(wanted)
    venv = cache / "venvs" / hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:12]
    python = venv / "bin" / "python"
    stamp = venv / "deps.txt"
    if not python.exists():
        sh([base_python, "-m", "venv", str(venv)])
    if not stamp.exists() or stamp.read_text() != "\n".join(wanted):
        sh([str(python), "-m", "pip", "install", "-q", *wanted])
        stamp.write_text("\n".join(wanted))
    return python


def apply_patch(tree: Path, patch: str, label: str) -> None:
    run = subprocess.run(["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch"], cwd=tree,
                         input=patch, text=True, capture_output=True)
    if run.returncode != 0:
        raise RuntimeError(f"{label} does not apply:\n{run.stdout}{run.stderr}")


def pytest(python: Path, tree: Path, case: dict, targets: list[str], report: str = "-rA",
           timeout: int = 1800) -> tuple[int, dict, str]:
    """Run pytest in the tree; return its exit code, {node id: outcome} and its output.

    report is pytest's -r flag: -rA lists every outcome (for the few regression tests), -rfE only failures and
    errors (whole files and suites: listing tens of thousands of passes makes pytest itself slow)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree / case.get("package_root", ".")),
           "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tree), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    args = [str(python), "-m", "pytest", "-p", "no:cacheprovider", report, "--tb=short", "--color=no",
            *case.get("pytest_args", []), *targets]
    run = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    outcomes = {}
    for line in run.stdout.splitlines():
        match = OUTCOME.match(line)
        if match:
            outcomes[match.group(2)] = match.group(1)
    return run.returncode, outcomes, run.stdout + run.stderr


def outcomes_of(node: str, outcomes: dict) -> list[str]:
    """The outcomes a node id stands for: itself, or every parametrization of a test named without brackets."""
    return [v for k, v in outcomes.items() if k == node or ("[" not in node and k.startswith(node + "["))]


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def verify(case: dict, cache: Path, base_python: str, full_suite: bool, result: Result) -> None:
    """Fill result in as the steps go, so that a step that raises leaves the earlier ones recorded."""
    python = case_python(cache, base_python, case.get("deps", []))
    archive = fetch_sdist(cache, case["project"], case["buggy_version"])
    tree = unpack(archive, cache / "work" / case["id"])
    nodes = case["regression_tests"]

    if full_suite:
        started = time.monotonic()
        code, _, out = pytest(python, tree, case, case.get("suite", []), report="-rfE")
        result.full_suite_s = round(time.monotonic() - started, 1)
        if code != 0:
            result.detail += f"full suite on the buggy release exited {code}: {tail(out, 3)}\n"

    apply_patch(tree, case["test_patch"], "test_patch")
    code, outcomes, out = pytest(python, tree, case, nodes)
    failed = [n for n in nodes if outcomes_of(n, outcomes) and all(
        o in ("FAILED", "ERROR") for o in outcomes_of(n, outcomes))]
    result.buggy_fails = code == 1 and failed == nodes
    if not result.buggy_fails:
        result.detail += f"buggy: exit {code}, failed {failed} of {nodes}\n{tail(out)}\n"

    apply_patch(tree, case["fix_patch"], "fix_patch")
    code, outcomes, out = pytest(python, tree, case, nodes)
    result.fixed_passes = code == 0 and all(
        outcomes_of(n, outcomes) and all(o == "PASSED" for o in outcomes_of(n, outcomes)) for n in nodes)
    if not result.fixed_passes:
        result.detail += f"fixed: exit {code}\n{tail(out)}\n"

    code, outcomes, out = pytest(python, tree, case, [case["test_file"]], report="-rfE")
    result.file_passes = code == 0
    if not result.file_passes:
        result.detail += f"fixed, whole {case['test_file']}: exit {code}\n{tail(out)}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="sdists, trees and venvs go here")
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--only", nargs="*", default=[], help="case ids to check (default: all)")
    parser.add_argument("--python", default=sys.executable, help="interpreter the test venvs are made from")
    parser.add_argument("--full-suite", action="store_true", help="also time each project's whole suite")
    parser.add_argument("-v", "--verbose", action="store_true", help="print why a case does not behave")
    opts = parser.parse_args()

    cases = json.loads(opts.cases.read_text())
    if opts.only:
        unknown = set(opts.only) - {c["id"] for c in cases}
        if unknown:
            parser.error(f"unknown case ids: {sorted(unknown)}")
        cases = [c for c in cases if c["id"] in opts.only]
    opts.cache.mkdir(parents=True, exist_ok=True)

    results = []
    for case in cases:
        started = time.monotonic()
        result = Result(case["id"])
        try:
            verify(case, opts.cache.resolve(), opts.python, opts.full_suite, result)
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            result.detail += f"{type(exc).__name__}: {exc}"
        results.append(result)
        status = "ok" if result.ok else "FAIL"
        print(f"{status:4}  {case['id']}  ({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
        if not result.ok and opts.verbose:
            print(result.detail, file=sys.stderr)

    def mark(flag: bool) -> str:
        return "yes" if flag else "NO"

    width = max([len(r.case_id) for r in results] + [4])
    header = f"{'case':<{width}}  buggy fails  fixed passes  test file passes"
    if opts.full_suite:
        header += "  full suite s (recorded)"
    print(header)
    print("-" * len(header))
    for case, r in zip(cases, results, strict=True):
        line = f"{r.case_id:<{width}}  {mark(r.buggy_fails):<11}  {mark(r.fixed_passes):<12}  {mark(r.file_passes)}"
        if opts.full_suite:
            line = f"{line:<{width + 45}}  {r.full_suite_s} ({case.get('full_suite_seconds')})"
        print(line)
    bad = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(bad)} of {len(results)} cases behave")
    for r in bad:
        print(f"\n== {r.case_id}\n{r.detail.strip()}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
