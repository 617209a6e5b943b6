"""Run the action's image the way GitHub's runner runs a container action, with buildah instead of Docker.

The runner mounts the workspace at /github/workspace, its temp folder's `_github_home`,
`_github_workflow` and `_runner_file_commands` at /github/home, /github/workflow and
/github/file_commands, starts the image's entrypoint in /github/workspace, and passes `INPUT_*` and
`GITHUB_*` variables; RUNNER_TEMP keeps its host value, which names no folder inside the container.
Peers on loopback are reachable because chroot isolation shares the host's network.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peers.harness import ActionRun, git, parse_outputs


def image_entrypoint(image: str) -> list[str]:
    out = subprocess.run(["buildah", "inspect", "--type", "image", image], check=True, capture_output=True,
                         text=True).stdout
    entrypoint = json.loads(out)["OCIv1"]["config"].get("Entrypoint")
    if not entrypoint:
        raise RuntimeError(f"{image} has no entrypoint")
    return entrypoint


@dataclass
class ContainerRun(ActionRun):
    first_line_seconds: float | None = None


def run_image(image: str, base: Path, workspace: Path, event_name: str, event: dict[str, Any],
              inputs: dict[str, str], env: dict[str, str], mounts: tuple[Path, ...] = (),
              timeout: float = 300) -> ContainerRun:
    """`mounts` are host folders the container sees at the same path (the bare origin a push goes to)."""
    runner_temp = base / "_temp"
    home, workflow, commands = (runner_temp / "_github_home", runner_temp / "_github_workflow",
                                runner_temp / "_runner_file_commands")
    for folder in (home, workflow, commands):
        folder.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex
    output_file, summary_file = commands / f"set_output_{suffix}", commands / f"step_summary_{suffix}"
    output_file.write_text("")
    summary_file.write_text("")
    for name in ("set_env", "add_path"):  # GITHUB_ENV and GITHUB_PATH: what later steps of the job would read
        (commands / name).write_text("")
    (workflow / "event.json").write_text(json.dumps(event))
    variables = {
        "HOME": "/github/home", "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": "/github/workflow/event.json", "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": f"/github/file_commands/{output_file.name}",
        "GITHUB_STEP_SUMMARY": f"/github/file_commands/{summary_file.name}",
        "GITHUB_ENV": "/github/file_commands/set_env", "GITHUB_PATH": "/github/file_commands/add_path",
        "RUNNER_TEMP": str(runner_temp), "GITHUB_RUN_ID": "4242", "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_SHA": git(workspace, "rev-parse", "HEAD"),
        **{f"INPUT_{k.upper()}": v for k, v in inputs.items()}, **env,
    }
    volumes = [f"{workspace}:/github/workspace", f"{home}:/github/home", f"{workflow}:/github/workflow",
               f"{commands}:/github/file_commands", *(f"{m}:{m}" for m in mounts)]
    container = subprocess.run(["buildah", "from", "--pull=never", "--quiet", image], check=True,
                               capture_output=True, text=True).stdout.strip()
    command = ["buildah", "run", "--isolation", "chroot", "--workingdir", "/github/workspace"]
    for volume in volumes:
        command += ["--volume", volume]
    for name, value in variables.items():
        command += ["--env", f"{name}={value}"]
    command += [container, "--", *image_entrypoint(image)]
    try:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        assert process.stdout is not None
        first_line = process.stdout.readline()
        first_line_seconds = time.monotonic() - started if first_line else None
        rest, stderr = process.communicate(timeout=timeout)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    outputs = parse_outputs(output_file.read_text())
    report_path = Path(outputs["report-path"]) if outputs.get("report-path") else None
    report = json.loads(report_path.read_text()) if report_path and report_path.exists() else None
    return ContainerRun(process.returncode, first_line + rest, stderr, outputs, summary_file.read_text(), report,
                        report_path, variables, first_line_seconds)
