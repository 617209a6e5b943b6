"""The command line and the action entry, without a run: arguments and commands it refuses in one line."""

from remediate.cli import main


def test_an_unknown_action_command_is_one_error_line(capsys, tmp_path):
    code = main(["action"], {"INPUT_COMMAND": "deploy", "GITHUB_WORKSPACE": str(tmp_path)})
    out = capsys.readouterr().out
    assert code == 1 and out.strip() == "::error::command: expected remediate, propose, deliver or coverage-map, " \
                                        "got 'deploy'"


def test_coverage_map_without_data_says_how_to_record_it(capsys, tmp_path):
    code = main(["coverage-map", "--data", str(tmp_path / ".coverage"), "--repo", str(tmp_path)], {})
    assert code == 1 and "--cov-context=test" in capsys.readouterr().err
