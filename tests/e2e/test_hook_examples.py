"""The shipped examples of examples/hooks/, with the real tools they name (ruff, mypy; prettier, eslint), their
configs loaded as a user's would be, through the tool dispatcher and a real sandbox: the formatter's change is
taken, a failing gate sends the model back, and a code rule blocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.harness import ROOT, reachable_folder
from remediate.agent.tools import Finished, Toolbox
from remediate.checks.gates import Gates
from remediate.checks.hooks import Hooks
from remediate.config import Config, TelemetryConfig, load_config
from remediate.gitops import Git
from remediate.guard.guardrails import policy_for
from remediate.guard.sandbox import Sandbox
from remediate.guard.workspace import Workspace
from remediate.records import TestRun
from remediate.secrets import Redactor
from remediate.telemetry import setup as telemetry_setup

NPM = ROOT / "tests" / "npm" / "node_modules"


@pytest.fixture
def example(request: pytest.FixtureRequest) -> Iterator[tuple[Path, Config]]:
    with reachable_folder("hook-example-") as base:
        repo = base / "repo"
        shutil.copytree(ROOT / "examples" / "hooks" / request.param, repo)
        env = {"PATH": os.environ["PATH"], "HOME": str(base), "GIT_CONFIG_GLOBAL": "/dev/null"}
        commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "example"]
        for args in (["init", "-q"], ["add", "-A"], commit):
            subprocess.run(["git", *args], cwd=repo, check=True, env=env)
        yield repo, load_config(repo)


def _toolbox(repo: Path, config: Config, suspects: set[str], path: str) -> Toolbox:
    env = {"PATH": os.environ["PATH"], "HOME": str(repo.parent)}
    git = Git.open(repo, env)
    sandbox = Sandbox({"PATH": path, "LANG": "C.UTF-8"}, [repo], git=git)
    policy, _ = policy_for(config, frozenset(suspects), frozenset())
    workspace = Workspace(repo, policy)
    redact, telemetry = Redactor(), telemetry_setup(TelemetryConfig())
    hooks = Hooks(config.hooks, sandbox, workspace, redact, telemetry, {}, "INC-9")
    gates = Gates(config.guardrails.quality_gates, sandbox, workspace, redact, telemetry, {}, hooks.records)
    return Toolbox(workspace, redact, lambda paths: TestRun(("pytest",), (), "passed", passed=1), git,
                   sandbox=sandbox, max_refusals=10, hooks=hooks, gates=gates)


def _edit(box: Toolbox, path: str, old: str, new: str) -> str:
    return box.execute("edit_file", json.dumps({"path": path, "old_str": old, "new_str": new}))


@pytest.mark.parametrize("example", ["python"], indirect=True)
def test_the_python_example_formats_lints_and_type_checks_the_fix(example):
    repo, config = example
    # `tests.setup` installs ruff and mypy in the action's container; here they are the suite's own.
    box = _toolbox(repo, config, {"app/totals.py"}, f"{Path(os.sys.executable).parent}:/usr/bin:/bin")
    blocked = _edit(box, "app/totals.py", "    discounted = subtotal(items) - discount",
                    "    print(discount)\n    discounted = subtotal(items) - discount")
    assert "REFUSED (code_rule)" in blocked and "use the logger" in blocked
    # The fix: clamp the discount. Written unformatted and with a type error (returns an int on one path).
    fixed = _edit(box, "app/totals.py", "    discounted = subtotal(items) - discount",
                  "    if discount>subtotal(items): return 0\n    discounted = subtotal(items) - discount")
    assert fixed.startswith("OK")
    formatted = (repo / "app" / "totals.py").read_text()
    assert "    if discount > subtotal(items):\n        return 0\n" in formatted  # ruff format's, taken
    refused = box.execute("finish", json.dumps({"summary": "clamp the discount"}))
    assert refused.startswith("NOT FINISHED") and "--- gate types" in refused
    assert "error: Incompatible return value" in refused
    _edit(box, "app/totals.py", "        return 0\n", "        return Decimal(0)\n")
    with pytest.raises(Finished):
        box.execute("finish", json.dumps({"summary": "clamp the discount"}))
    gates = [(r.name, r.decision) for r in box.hooks.records if r.kind == "gate"]
    assert gates == [("format", "passed"), ("lint", "passed"), ("types", "failed"),
                     ("format", "passed"), ("lint", "passed"), ("types", "passed")]


@pytest.mark.parametrize("example", ["node"], indirect=True)
def test_the_node_example_formats_with_prettier_and_gates_on_eslint(example):
    repo, config = example
    node_bin = NPM / ".bin"
    box = _toolbox(repo, config, {"src/paginate.js"}, f"{node_bin}:/usr/bin:/bin")
    sandbox = box.sandbox
    assert sandbox is not None
    sandbox.open_deps()  # what the example's tests.setup leaves there: the locked node_modules
    (sandbox.deps / "node_modules").symlink_to(NPM)
    sandbox.freeze_deps()
    blocked = _edit(box, "src/paginate.js", "  const start", "  console.log(page);\n  const start")
    assert "REFUSED (code_rule)" in blocked and "use the logger" in blocked
    fixed = _edit(box, "src/paginate.js", "  const start = (page - 1) * size;",
                  "  const unused = 1\n  const start = (Math.max(page,1) - 1) * size;")
    assert fixed.startswith("OK"), fixed
    assert "const start = (Math.max(page, 1) - 1) * size;" in (repo / "src" / "paginate.js").read_text()
    refused = box.execute("finish", json.dumps({"summary": "page 0 is page 1"}))
    assert refused.startswith("NOT FINISHED") and "'unused' is assigned a value but never used" in refused
    _edit(box, "src/paginate.js", "  const unused = 1;\n", "")
    with pytest.raises(Finished):
        box.execute("finish", json.dumps({"summary": "page 0 is page 1"}))
    assert "node_modules" not in {c.path for c in box.workspace.changes}
