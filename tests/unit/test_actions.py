import io

from peers.harness import parse_outputs
from remediate.actions import Runner, read_inputs, report_location


def test_inputs_keep_hyphens_like_the_runner():
    env = {"INPUT_GITHUB-TOKEN": "t", "INPUT_INCIDENT-ID": " INC-1 ", "INPUT_DRY-RUN": "true", "INPUT_MODEL": ""}
    assert read_inputs(env) == {"github-token": "t", "incident-id": "INC-1", "dry-run": "true"}


def test_outputs_use_heredocs_that_survive_newlines(tmp_path):
    out = tmp_path / "out"
    runner = Runner({"GITHUB_OUTPUT": str(out)}, io.StringIO())
    runner.set_outputs({"outcome": "fixed", "detail": "two\nlines"})
    assert parse_outputs(out.read_text()) == {"outcome": "fixed", "detail": "two\nlines"}


def test_annotations_masks_and_groups_in_actions_only():
    stream = io.StringIO()
    runner = Runner({"GITHUB_ACTIONS": "true"}, stream)
    runner.mask("s3cr3t-value")
    runner.error("bad\ninput 100%")
    with runner.group("agent"):
        runner.log("inside")
    assert stream.getvalue().splitlines() == ["::add-mask::s3cr3t-value", "::error::bad%0Ainput 100%25",
                                              "::group::agent", "inside", "::endgroup::"]
    plain = io.StringIO()
    Runner({}, plain).mask("s3cr3t-value")
    assert plain.getvalue() == ""


def test_report_goes_under_runner_temp(tmp_path):
    path, shown = report_location({"RUNNER_TEMP": str(tmp_path)}, "INC-1")
    assert path == tmp_path / "remediate/report-INC-1.json" and shown == str(path)


def test_in_a_container_action_the_report_goes_to_the_mounted_home(tmp_path):
    home = tmp_path / "github-home"
    home.mkdir()
    path, shown = report_location({"RUNNER_TEMP": "/home/runner/work/_temp"}, "INC-1", container_home=home)
    assert path == home / "remediate/report-INC-1.json"
    assert shown == "/home/runner/work/_temp/_github_home/remediate/report-INC-1.json"
