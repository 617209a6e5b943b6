"""The container image: its size (as stored, and as a registry serves it compressed) and how soon a run
started from it prints its first log line.

    scripts/image build && .venv/bin/python bench/image.py [--runs 5]

Each run is the full end-to-end fix (MCP, scripted LLM, tests in the container, push, PR) against the
loopback peers, started with `buildah run` as scripts/image check does. The clock starts when buildah is
asked to run the entrypoint, so container set-up is included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers import events, scenarios
from peers.container import run_image
from peers.github_stub import GitHubStub
from peers.harness import make_sample_repo, start_mcp
from peers.openai_stub import ScriptedLLM


def layer_bytes(image: str, *flags: str) -> int:
    """The sum of the image's layers as `buildah push` writes them to an OCI layout."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["buildah", "push", "--quiet", "--format", "oci", *flags, image, f"oci:{tmp}/layout"],
                       check=True, capture_output=True)
        layout = Path(tmp) / "layout"
        index = json.loads((layout / "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":", 1)[1]
        manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
        return sum(layer["size"] for layer in manifest["layers"])


def sizes(image: str) -> tuple[int, int]:
    """Uncompressed (the layers as stored, what `docker images` calls the size), and gzip-compressed as a
    registry serves it."""
    inspected = json.loads(subprocess.run(["buildah", "inspect", "--type", "image", image], check=True,
                                          capture_output=True, text=True).stdout)
    stored = sum(layer["size"] for layer in json.loads(inspected["Manifest"])["layers"])
    return stored, layer_bytes(image, "--compression-format", "gzip")


def one_run(image: str, base: Path) -> tuple[float, float]:
    github = GitHubStub().start()
    mcp = start_mcp(base, scenarios.incident_logs(), {"incident_id": scenarios.INCIDENT_ID, "summary": "leak"})
    llm = ScriptedLLM(scenarios.good_fix()).start()
    try:
        repo = make_sample_repo(base, scenarios.config_yaml(mcp.url))
        event = events.repository_dispatch(scenarios.payload(repo.bug_commit))
        started = time.monotonic()
        run = run_image(image, base, repo.workspace, "repository_dispatch", event, {"github-token": github.token},
                        {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": llm.api_key,
                         "INCIDENT_MCP_TOKEN": mcp.token, "GITHUB_API_URL": github.api_url,
                         "GITHUB_REPOSITORY": f"{github.owner}/{github.repo}"}, mounts=(repo.origin,))
        total = time.monotonic() - started
        if run.exit_code != 0 or run.first_line_seconds is None:
            raise SystemExit(f"run failed ({run.exit_code}): {run.stdout[-2000:]}{run.stderr[-2000:]}")
        return run.first_line_seconds, total
    finally:
        llm.stop()
        mcp.stop()
        github.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default=os.environ.get("REMEDIATE_IMAGE", "localhost/remediate:dev"))
    args = parser.parse_args()
    stored, compressed = sizes(args.image)
    print(f"image {args.image}: {stored / 1e6:.0f} MB stored, {compressed / 1e6:.0f} MB compressed (registry)")
    firsts, totals = [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            first, total = one_run(args.image, Path(tmp))
        firsts.append(first)
        totals.append(total)
        print(f"run {i + 1}: first log line {first:.2f} s, whole run {total:.2f} s")
    print(f"median of {args.runs}: first log line {statistics.median(firsts):.2f} s, "
          f"whole run {statistics.median(totals):.2f} s")


if __name__ == "__main__":
    main()
