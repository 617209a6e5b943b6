"""The image as shipped: built from the Dockerfile, started from its own entrypoint, reading and writing
only through the runner's mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers import scenarios
from peers.hostile_tests import WORKFLOW_COMMANDS, hostile_test
from tests.meta.test_action_metadata import OUTPUTS_WRITTEN


def test_image_fixes_the_incident_and_opens_a_pull_request(in_container, github):
    out = in_container(scenarios.good_fix())
    run = out.run

    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.outputs["outcome"] == "fixed" and run.outputs["reason"] == "tests_passed"
    assert set(run.outputs) == OUTPUTS_WRITTEN
    assert len(github.pulls) == 1
    pr = github.pulls[0]
    assert run.outputs["pr-url"] == pr["html_url"] and pr["head"]["ref"] == "hotfix/INC-1234"
    # The push left the container: the bare origin on the host holds the fix.
    assert "deque(maxlen=AUDIT_LOG_SIZE)" in out.repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    # The affected tests ran inside the image, with the image's Python and pytest.
    assert run.report["tests"]["status"] == "passed"
    assert run.report["tests"]["selected"] == ["tests/test_audit_log_bounded.py", "tests/test_service.py"]
    # The report lives under the mounted home and is named by its host path, where upload-artifact finds it.
    assert run.report_path == run.report_path.resolve()
    assert str(run.report_path).startswith(run.env["RUNNER_TEMP"] + "/_github_home/remediate/")
    assert run.report["trace_id"] == run.outputs["trace-id"]
    assert "# ✅ remediate: fixed" in run.summary
    assert run.first_line_seconds is not None


def test_image_escalates_a_fix_whose_tests_fail_with_exit_code_2(in_container, github):
    out = in_container(scenarios.wrong_fix())
    run = out.run

    assert run.exit_code == 2, run.stdout + run.stderr
    assert run.outputs["outcome"] == "escalated" and run.outputs["reason"] == "tests_failed"
    assert github.pulls == []
    issue = [i for i in github.issues if not i.get("_pr")]
    assert len(issue) == 1 and run.outputs["escalation-url"] == issue[0]["html_url"]
    assert run.report["tests"]["status"] == "failed"


@pytest.mark.parametrize("budget", ["lots", "-1"])
def test_image_rejects_bad_input_in_one_line_with_exit_code_1(in_container, github, budget):
    out = in_container(scenarios.good_fix(), inputs={"budget-usd": budget})
    run = out.run

    assert run.exit_code == 1
    assert run.outputs["outcome"] == "error" and run.outputs["reason"] == "bad_input"
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "budget-usd" in errors[0]
    assert "Traceback" not in run.stdout + run.stderr
    assert out.llm.requests == [] and github.pulls == []
    assert run.report["outcome"] == "error"


def _wheel(folder, name: str, source: str):
    """A pure-Python wheel built by hand, so pip in the image installs it with no index and no build step."""
    import base64
    import hashlib
    import zipfile

    def digest(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    info = f"{name}-1.0.dist-info"
    files = {f"{name}/__init__.py": source.encode(),
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{path},{digest(data)},{len(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, data in {**files, f"{info}/RECORD": record.encode()}.items():
            wheel.writestr(member, data)
    return path


def test_tests_setup_installs_the_projects_test_dependencies_inside_the_image(in_container, github, tmp_path):
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    wheel = _wheel(vendor, "auditfmt", "def fmt(entry):\n    return repr(entry)\n")
    config_extra = f"tests:\n  setup: [python, -m, pip, install, --no-index, --quiet, {wheel}]\n"
    out = in_container(scenarios.good_fix(), config_extra=config_extra,
                       extra_files={"tests/conftest.py": "import auditfmt  # the project's test dependency\n"},
                       mounts=(vendor,))
    run = out.run
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.report["tests"]["status"] == "passed" and "test_setup" in run.report["timings"]


def test_in_the_image_the_change_runs_as_the_sandbox_user_and_reaches_nothing(in_container, github):
    """The sandbox for real: the image's remediate-sandbox user, the runner's mounts closed to it."""
    regression = "tests/test_audit_log_bounded.py"
    evil = hostile_test(Path("/github/workspace"), Path("/github/home"), Path("/github/file_commands/set_env"),
                        Path("/github/file_commands/add_path"), Path("/tmp/remediate-daemon"))
    out = in_container([{"tool_calls": [{"name": "write_file", "arguments": {"path": regression, "content": evil}},
                                        {"name": "run_tests", "arguments": {"paths": [regression]}}]},
                        *scenarios.good_fix()[1:]])
    run = out.run
    assert run.exit_code == 0, run.stdout + run.stderr
    sandbox = run.report["sandbox"]
    assert (sandbox["user"], sandbox["uid"], sandbox["switched_user"], sandbox["missing"]) == (
        "remediate-sandbox", 10001, True, [])
    told = next(m["content"] for m in out.llm.requests[1]["messages"]
                if m["role"] == "tool" and "found=" in m["content"])
    assert "found=0 pieces=[]" in told, told
    for name in ("workspace", "git-config", "git-hook", "git-commit", "home-gitconfig", "github-env", "github-path"):
        assert f"('{name}', 'failed" in told, (name, told)
    commands = out.repo.workspace.parent / "_temp" / "_runner_file_commands"
    assert (commands / "set_env").read_text() == "" and (commands / "add_path").read_text() == ""
    assert not any(line.startswith(WORKFLOW_COMMANDS) for line in run.stdout.splitlines())
    pushed = out.repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    assert "changed after the verdict" not in pushed and "deque(maxlen=AUDIT_LOG_SIZE)" in pushed
