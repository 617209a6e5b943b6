"""A real observability MCP server: `mcp-grafana` (PyPI, Grafana's own) started over stdio from the shipped
example `.architect.yaml`, against a local stand-in of the Grafana HTTP API serving the incident's Loki logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from peers import scenarios
from peers.grafana_stub import LOKI_UID, GrafanaStub

pytestmark = pytest.mark.entrypoint  # every run here as the runner starts it

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "grafana" / ".architect.yaml"
GRAFANA_TOKEN = "glsa_incidentReaderToken_5a9c2e"


@pytest.fixture
def grafana():
    lines = [({"app": "user-service", "env": "prod"}, line) for line in scenarios.incident_logs().splitlines()]
    lines += [({"app": "billing", "env": "prod"}, "2026-11-25T03:10:00Z ERROR billing unrelated failure")]
    stub = GrafanaStub(lines, GRAFANA_TOKEN).start()
    yield stub
    stub.stop()


def test_logs_from_loki_via_mcp_grafana_reach_the_prompt_condensed(remediate, grafana):
    venv_bin = str(Path(sys.executable).parent)  # where pip put mcp-grafana
    out = remediate(scenarios.good_fix(), config=EXAMPLE.read_text(), env={
        "GRAFANA_URL": grafana.url, "GRAFANA_SERVICE_ACCOUNT_TOKEN": GRAFANA_TOKEN,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
    run = out.run
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.outputs["outcome"] == "fixed" and len(out.github.pulls) == 1

    # mcp-grafana asked the Grafana API for the service's logs, with the token the config named.
    loki = [r for r in grafana.requests if r["path"].endswith("/loki/api/v1/query_range")]
    assert len(loki) == 1 and loki[0]["path"].startswith(f"/api/datasources/proxy/uid/{LOKI_UID}/")
    assert loki[0]["query"]["query"] == '{app="user-service"}'
    assert {r["authorization"] for r in grafana.requests} == {f"Bearer {GRAFANA_TOKEN}"}

    # The prompt holds the condensed logs: templates with counts, the error and its trace mapped to the repo.
    prompt = out.first_prompt()
    assert '<untrusted source="mcp grafana/query_loki_logs">' in prompt
    assert "[x400]" in prompt and prompt.count("processed update for user") == 1
    assert 'File "/srv/app/users/service.py", line 20, in process_queue' in prompt
    assert "[repository file: app/users/service.py:20]" in prompt
    assert "unrelated failure" not in prompt  # another service's stream was not asked for
    stats = run.report["context"]["logs"][0]
    assert stats["source"] == "grafana/query_loki_logs" and stats["condensed"]
    assert stats["lines"] == len(scenarios.incident_logs().splitlines())
    assert stats["chars_before"] > 20 * stats["chars_after"] > 0
    assert stats["repo_files"] == ["app/users/service.py"]

    # The Grafana token is the server's, never the model's, the report's or the PR's.
    logged = [line for line in run.stdout.splitlines() if not line.startswith("::add-mask::")]
    everything = "\n".join([*out.prompt_texts(), str(run.report), out.github.pulls[0]["body"], *logged, run.stderr])
    assert GRAFANA_TOKEN not in everything
    assert f"::add-mask::{GRAFANA_TOKEN}" in run.stdout  # the runner hides it in the job log too
    assert f"::add-mask::{grafana.url}" not in run.stdout  # an address is not a secret
