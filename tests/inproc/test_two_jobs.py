"""Two-job mode: `propose` (read-only: no push, no GitHub call, no escalation) writes the vetted change;
`deliver`, in another checkout, runs no model and no code of the change, checks the proposal again against its
own config's guardrails on the named base commit, and only then pushes and opens the PR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peers import scenarios
from peers.inprocess import CONFIG, Case


def _propose(case: Case, folder: Path, script: list | None = None) -> dict:
    report, outputs, _, _ = case.run(script or scenarios.good_fix(), inputs={"command": "propose",
                                                                             "proposal": str(folder)})
    assert case.github.calls == [] and case.repo.remote_branches() == ["main"]  # it wrote nothing anywhere
    assert outputs["proposal-path"] == str(folder / "proposal.json")
    return report


def _deliver(case: Case, folder: Path, tmp_path: Path, config: str | None = None):
    """The second job: a fresh checkout of the same origin; the model must not be called."""
    clone = case.repo.fresh_clone(tmp_path / "deliver-checkout")
    if config is not None:
        (clone.workspace / ".remediate.yaml").write_text(config)
    first, case.repo = case.repo, clone
    try:
        return case.run([], inputs={"command": "deliver", "proposal": str(folder)})
    finally:
        case.repo = first


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return Case(tmp_path)


def test_propose_then_deliver_opens_the_pr_with_the_vetted_change(case, tmp_path):
    first = _propose(case, tmp_path / "proposal")
    assert (first["outcome"], first["pr"]) == ("fixed", None), first["detail"]
    report, outputs, model, _ = _deliver(case, tmp_path / "proposal", tmp_path)
    assert model.requests == [] and (report["outcome"], report["reason"]) == ("fixed", "tests_passed")
    [pr] = case.github.pulls
    assert outputs["pr-url"] == pr["url"] and report["trace_id"] == first["trace_id"]  # one trace, two jobs
    pushed = case.repo.remote_file("hotfix/INC-1234", "app/users/service.py")
    assert pushed is not None and "deque(maxlen=AUDIT_LOG_SIZE)" in pushed
    assert "fails_before" not in json.dumps(report["guardrail_events"]) and "passed" in pr["body"]


def test_a_tampered_proposal_is_refused_by_the_second_job(case, tmp_path):
    _propose(case, tmp_path / "proposal")
    path = tmp_path / "proposal" / "proposal.json"
    data = json.loads(path.read_text())
    data["changes"].append({"path": ".github/workflows/deploy.yml", "renamed_from": None, "base_blob": None,
                            "after": "on: push\n"})
    path.write_text(json.dumps(data))
    report, _, _, _ = _deliver(case, tmp_path / "proposal", tmp_path)
    assert (report["outcome"], report["reason"]) == ("escalated", "proposal_refused")
    assert [e["rule"] for e in report["guardrail_events"]] == ["never_writable"]
    assert case.github.pulls == [] and case.repo.remote_branches() == ["main"]
    assert [i["title"] for i in case.github.issues] == ["[remediate] Incident INC-1234 needs a human: proposal_refused"]


def test_the_second_job_judges_by_its_own_config(case, tmp_path):
    _propose(case, tmp_path / "proposal")
    stricter = CONFIG.replace('protected_files: ["*.env*"', 'protected_files: ["app/users/service.py", "*.env*"')
    report, _, _, _ = _deliver(case, tmp_path / "proposal", tmp_path, config=stricter)
    assert (report["reason"], [e["rule"] for e in report["guardrail_events"]]) == ("proposal_refused",
                                                                                   ["protected_file"])


def test_a_proposal_that_no_longer_applies_is_refused(case, tmp_path):
    _propose(case, tmp_path / "proposal")
    path = tmp_path / "proposal" / "proposal.json"
    data = json.loads(path.read_text())
    service = next(c for c in data["changes"] if c["path"] == "app/users/service.py")
    service["base_blob"] = "0" * 40
    path.write_text(json.dumps(data))
    report, _, _, _ = _deliver(case, tmp_path / "proposal", tmp_path)
    assert [e["rule"] for e in report["guardrail_events"]] == ["stale_proposal"]
    assert case.repo.remote_branches() == ["main"]


def test_an_escalated_first_job_is_escalated_by_the_second(case, tmp_path):
    first = _propose(case, tmp_path / "proposal", scenarios.wrong_fix())
    assert (first["outcome"], first["reason"], first["escalation"]) == ("escalated", "tests_failed", None)
    report, _, _, _ = _deliver(case, tmp_path / "proposal", tmp_path)
    assert (report["outcome"], report["reason"]) == ("escalated", "tests_failed")
    assert len(case.github.issues) == 1 and case.github.pulls == []


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d.update(version=2), "proposal.version"),
    (lambda d: d["changes"].append({"path": 3}), "proposal.changes[2]"),
    (lambda d: d.update(incident_id="INC-9"), "proposal.incident_id"),
])
def test_a_malformed_proposal_is_a_one_line_error_naming_the_field(case, tmp_path, edit, field):
    _propose(case, tmp_path / "proposal")
    path = tmp_path / "proposal" / "proposal.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    report, _, _, _ = _deliver(case, tmp_path / "proposal", tmp_path)
    assert (report["outcome"], report["reason"]) == ("error", "bad_input")
    assert field in report["detail"] and "\n" not in report["detail"]


def test_what_the_second_job_carries_of_the_first_is_only_well_typed_data(case, tmp_path):
    _propose(case, tmp_path / "proposal")
    path = tmp_path / "proposal" / "proposal.json"
    data = json.loads(path.read_text())
    data["report"]["llm"]["per_call"] = [{"input_tokens": "lots", "cost_usd": -5, "tool_calls": ["x", 3]}, "junk"]
    data["report"]["tests"] = {"status": "passed!!", "failures": [{"name": "<script>"}, 7], "passed": True}
    data["agent_summary"] = "x" * 10_000
    path.write_text(json.dumps(data))
    report, _, _, _ = _deliver(case, tmp_path / "proposal", tmp_path)  # the harness validates it against the schema
    assert report["llm"]["per_call"] == [{"input_tokens": 0, "cached_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
                                          "reserved_usd": 0.0, "usage_reported": False, "tool_calls": ["x"]}]
    assert report["tests"]["status"] == "error" and report["tests"]["passed"] == 0
    assert len(report["agent_summary"]) == 4000
