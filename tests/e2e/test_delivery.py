"""Delivery and escalation against the GitHub stand-in, local webhook receivers and a real origin."""

from __future__ import annotations

import json
import os
import threading

import pytest

from peers import scenarios
from peers.harness import git, make_sample_repo, run_action
from peers.http_receiver import Receiver
from peers.openai_stub import ScriptedLLM


def _issues(github):
    return [i for i in github.issues if not i.get("_pr")]


@pytest.fixture
def receivers():
    started = {name: Receiver().start() for name in ("pagerduty", "webhook", "slack")}
    yield started
    for receiver in started.values():
        receiver.stop()


CHANNELS = """escalation:
  pagerduty: {{routing_key_env: PD_KEY, url: "{pd}", severity: critical}}
  webhook: {{url_env: HOOK_URL, headers: {{X-Source: remediate}}}}
  slack: {{webhook_url_env: SLACK_URL}}
{extra}"""


def _channels(receivers, extra: str = "") -> tuple[str, dict[str, str]]:
    config = CHANNELS.format(pd=receivers["pagerduty"].url("/v2/enqueue"), extra=extra)
    env = {"PD_KEY": "pd-routing-key-0123456789",
           "HOOK_URL": receivers["webhook"].url("/hooks/incident?token=abc123456"),
           "SLACK_URL": receivers["slack"].url("/services/T000/B000/xyzxyzxyz")}
    return config, env


def test_pr_creation_forbidden_for_actions_names_the_setting(remediate, github):
    github.fail_next["POST /pulls"] = (403, "GitHub Actions is not permitted to create or approve pull requests.")
    out = remediate(scenarios.good_fix())
    assert out.run.exit_code == 1 and out.run.report["reason"] == "github_failed"
    assert "Allow GitHub Actions to create and approve pull requests" in out.run.stdout
    assert github.pulls == []
    assert len(_issues(github)) == 1  # escalation still went out


def test_a_transient_502_is_retried(remediate, github):
    github.fail_next["POST /pulls"] = 502
    out = remediate(scenarios.good_fix())
    assert out.run.exit_code == 0 and len(github.pulls) == 1
    posts = [r for r in github.journal if r["method"] == "POST" and r["path"].endswith("/pulls")]
    assert len(posts) == 2


@pytest.mark.entrypoint
def test_a_rejected_push_escalates_and_leaves_origin_alone(remediate, mcp, tmp_path):
    repo = make_sample_repo(tmp_path / "protected", scenarios.config_yaml(mcp.url))
    hook = repo.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nwhile read old new ref; do case $ref in refs/heads/hotfix/*) "
                    "echo 'protected by policy' >&2; exit 1;; esac; done\n")
    hook.chmod(0o755)
    out = remediate(scenarios.good_fix(), repo=repo)
    assert out.run.exit_code == 2 and out.run.report["reason"] == "push_rejected"
    assert "remote: protected by policy" in out.run.report["detail"]
    assert "pre-receive hook declined" in out.run.report["detail"]
    assert repo.remote_branches() == ["main"] and out.github.pulls == []
    assert "Attempted diff" in _issues(out.github)[0]["body"]


def test_a_branch_a_person_pushed_to_is_left_for_humans(remediate, tmp_path):
    first = remediate(scenarios.good_fix())
    repo = first.repo
    human = repo.fresh_clone(tmp_path / "human")
    git(human.workspace, "checkout", "-q", "hotfix/INC-1234")
    (human.workspace / "NOTES.md").write_text("on-call notes\n")
    git(human.workspace, "add", "NOTES.md")
    git(human.workspace, "commit", "-qm", "on-call: notes")
    git(human.workspace, "push", "-q", "origin", "hotfix/INC-1234")
    human_sha = git(repo.origin, "rev-parse", "hotfix/INC-1234")
    second = remediate(scenarios.good_fix(), repo=repo.fresh_clone(tmp_path / "rerun"))
    assert second.run.exit_code == 2 and second.run.report["reason"] == "branch_diverged"
    assert git(repo.origin, "rev-parse", "hotfix/INC-1234") == human_sha


SANDBOX_UID = int(os.environ["REMEDIATE_SANDBOX_UID"])  # this worker's (conftest.py); each concurrent run its own


def test_two_concurrent_runs_end_with_one_pull_request(remediate, github, mcp, tmp_path):
    repo = make_sample_repo(tmp_path / "shared", scenarios.config_yaml(mcp.url))
    llms = [ScriptedLLM(scenarios.good_fix()).start() for _ in range(2)]
    results = {}

    def run(i: int) -> None:
        checkout = repo.fresh_clone(tmp_path / f"concurrent{i}")
        results[i] = run_action(tmp_path / f"c{i}", checkout.workspace, "repository_dispatch",
                                {"action": "incident", "client_payload": scenarios.payload(repo.bug_commit)},
                                {"github-token": github.token},
                                {"OPENAI_BASE_URL": llms[i].base_url, "OPENAI_API_KEY": llms[i].api_key,
                                 "INCIDENT_MCP_TOKEN": mcp.token, "GITHUB_API_URL": github.api_url,
                                 "GITHUB_REPOSITORY": "acme/user-service",
                                 # Runs sharing a host need a sandbox user each (the sweep ends all of a user's).
                                 "REMEDIATE_SANDBOX_UID": str(SANDBOX_UID + 8000 * (i + 1))})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for llm in llms:
        llm.stop()
    why = [f"{(r.report or {}).get('reason')}: {(r.report or {}).get('detail', r.stderr[-800:])} "
           f"{((r.report or {}).get('tests') or {}).get('exit_code')} "
           f"{((r.report or {}).get('tests') or {}).get('output_tail', '')[-600:]}" for r in results.values()]
    assert [results[i].exit_code for i in range(2)] == [0, 0], why
    assert len(github.pulls) == 1
    assert sorted(results[i].report["pr"]["created"] for i in range(2)) == [False, True]
    assert repo.remote_branches() == ["hotfix/INC-1234", "main"]


@pytest.mark.entrypoint
def test_every_escalation_channel(remediate, receivers):
    config, env = _channels(receivers)
    out = remediate(scenarios.wrong_fix(), config_extra=config, env=env)
    assert out.run.exit_code == 2
    escalation = out.run.report["escalation"]
    assert escalation["channels"] == ["github_issue", "pagerduty", "webhook", "slack"]
    assert escalation["failed_channels"] == []
    issue_url = escalation["issue_url"]
    run_url = "https://github.example/acme/user-service/actions/runs/4242"

    [pd] = receivers["pagerduty"].requests
    event = pd["json"]
    assert pd["path"] == "/v2/enqueue"
    assert (event["routing_key"], event["event_action"], event["dedup_key"]) == (
        "pd-routing-key-0123456789", "trigger", "INC-1234")
    assert event["payload"]["severity"] == "critical" and event["payload"]["source"] == "remediate"
    assert event["payload"]["component"] == "user-service"
    assert "tests_failed" in event["payload"]["summary"]
    assert {link["href"] for link in event["links"]} == {issue_url, run_url}

    [hook] = receivers["webhook"].requests
    assert hook["headers"]["X-Source"] == "remediate" and hook["path"] == "/hooks/incident?token=abc123456"
    assert hook["json"]["event"] == "remediate.escalation"
    assert hook["json"]["report"]["reason"] == "tests_failed" and hook["json"]["issue_url"] == issue_url

    [slack] = receivers["slack"].requests
    assert "INC-1234" in slack["json"]["text"] and f"<{issue_url}|Escalation issue>" in slack["json"]["text"]

    # Channel secrets are masked and never written to the report.
    report_text = json.dumps(out.run.report)
    for secret in ("pd-routing-key-0123456789", "xyzxyzxyz", "abc123456"):
        assert secret not in report_text
        assert f"::add-mask::{env['PD_KEY']}" in out.run.stdout


def test_a_failing_channel_hides_no_other(remediate, receivers):
    receivers["slack"].statuses = [500, 500]
    config, env = _channels(receivers)
    env.pop("PD_KEY")
    out = remediate(scenarios.wrong_fix(), config_extra=config, env=env)
    escalation = out.run.report["escalation"]
    assert escalation["channels"] == ["github_issue", "webhook"]
    assert escalation["failed_channels"] == ["pagerduty", "slack"]
    assert len(receivers["slack"].requests) == 2  # retried once
    warnings = "\n".join(out.run.report["warnings"])
    assert "PD_KEY is not set" in warnings and "slack failed: HTTP 500" in warnings
    assert out.run.exit_code == 2


def test_the_attempted_change_is_pushed_for_on_call(remediate):
    out = remediate(scenarios.wrong_fix(), config_extra="escalation:\n  push_attempt: true\n")
    assert out.run.exit_code == 2
    assert out.run.outputs["attempt-branch"] == "hotfix-attempt/INC-1234"
    assert "deque(maxlen=AUDIT_LOG_SIZE)" in out.repo.remote_file("hotfix-attempt/INC-1234", "app/users/service.py")
    assert out.github.pulls == []
    assert "hotfix-attempt/INC-1234" in _issues(out.github)[0]["body"]


def test_draft_and_reviewers(remediate, github):
    extra = "delivery:\n  draft: true\n  reviewers: [alice]\n  team_reviewers: [payments-oncall]\n"
    out = remediate(scenarios.good_fix(), config_extra=extra)
    assert out.run.exit_code == 0
    pr = github.pulls[0]
    assert pr["draft"] is True
    assert pr["requested_reviewers"] == [{"login": "alice"}]
    assert pr["requested_teams"] == [{"slug": "payments-oncall"}]


def test_an_escalation_rerun_comments_on_the_same_issue(remediate, tmp_path):
    first = remediate(scenarios.wrong_fix())
    second = remediate(scenarios.wrong_fix(), repo=first.repo.fresh_clone(tmp_path / "again"))
    assert second.run.exit_code == 2
    issues = _issues(first.github)
    assert len(issues) == 1
    assert any("ran again and escalated" in c for c in first.github.comments[issues[0]["number"]])


def test_a_secondary_rate_limit_is_waited_out(remediate, github):
    github.fail_next["POST /pulls"] = (403, "You have exceeded a secondary rate limit. Please wait a few minutes.",
                                       {"Retry-After": "1"})
    out = remediate(scenarios.good_fix())
    assert out.run.exit_code == 0 and len(github.pulls) == 1
    assert len([r for r in github.journal if r["method"] == "POST" and r["path"].endswith("/pulls")]) == 2


def test_a_rerun_comment_says_what_changed(remediate, github, tmp_path):
    first = remediate(scenarios.good_fix())
    remediate(scenarios.good_fix(), repo=first.repo.fresh_clone(tmp_path / "again"))
    [comment] = github.comments[github.pulls[0]["number"]]
    assert "force-pushed this branch" in comment
    assert "| `app/users/service.py` | modified |" in comment


def test_a_fix_in_an_ignored_path_escalates_instead_of_committing_something_else(remediate):
    script = [*scenarios.good_fix()[:2],
              {"tool_calls": [{"name": "write_file", "arguments": {"path": "tests/generated/test_audit_log.py",
                                                                   "content": scenarios.REGRESSION_TEST}}]},
              *scenarios.good_fix()[3:]]
    out = remediate(script, extra_files={".gitignore": "generated/\n"})
    run = out.run
    assert run.exit_code == 2 and run.report["reason"] == "not_committable"
    assert "tests/generated/test_audit_log.py" in run.report["detail"] and ".gitignore" in run.report["detail"]
    assert out.github.pulls == [] and out.repo.remote_branches() == ["main"]
