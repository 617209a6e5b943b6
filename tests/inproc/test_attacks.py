"""Every attack of the hostile model's catalogue (peers/attacks.py), in-process: refused with its rule,
recorded, nothing changed in the checkout, origin or outside the repository. For the first attack of each
rule, the legitimate fix that follows still lands, alone (the others end with the model giving up, which is
the same refusal without a second test run). tests/e2e/test_security.py runs one of each class through the
entrypoint."""

from __future__ import annotations

import pytest

from peers import scenarios
from peers.attacks import ATTACKS, BLOCKED, CACHES, Attack, outside_sentinel
from peers.harness import git
from peers.inprocess import Case


def attack_config(attack: Attack) -> str:
    blocked = ", ".join(f'"{b}"' for b in BLOCKED)
    return f"""llm: {{model: openai/gpt-4.1-mini, api_key_env: OPENAI_API_KEY}}
guardrails:
  max_files_modified: 3
  protected_files: ["*.env*", "config/production.*", "k8s/production/**", "Dockerfile*", "*.lock"]
  blocked_commands: [{blocked}]
{attack.guardrails}costs: {{budget_usd: 1.00}}
"""


@pytest.fixture(scope="module")
def outside():
    with outside_sentinel() as folder:
        yield folder


FIRST_OF_EACH_RULE = {next(a.name for a in ATTACKS if a.rule == rule) for rule in {a.rule for a in ATTACKS}}
GIVE_UP = {"tool_calls": [{"name": "escalate", "arguments": {"reason": "refused; handing over"}}]}


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_refused_recorded_and_the_fix_still_lands(tmp_path, outside, attack):
    assert len(ATTACKS) >= 40
    case = Case(tmp_path, attack_config(attack), attack.extra_files, attack.symlinks)
    lands = attack.name in FIRST_OF_EACH_RULE
    after = scenarios.fix_after_an_attack() if lands else [GIVE_UP]
    report, outputs, model, _ = case.run([{"tool_calls": attack.calls}, *after])
    repo = case.repo

    assert [e["rule"] for e in report["guardrail_events"]] == [attack.rule], report["guardrail_events"]
    assert f"REFUSED ({attack.rule})" in model.requests[1][-1]["content"]

    status = git(repo.workspace, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert [line for line in status if not CACHES.match_file(line[3:])] == []
    assert git(repo.origin, "rev-parse", "main") == git(repo.workspace, "rev-parse", "HEAD")
    git(repo.workspace, "diff", "--exit-code", "HEAD")
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert not (repo.workspace.parent / "escape.py").exists()

    if not lands:
        assert (outputs["outcome"], report["reason"], report["changes"]) == ("escalated", "model_gave_up", [])
        assert attack.rule in case.github.issues[0]["body"]  # the escalation names the refusal
        return
    assert outputs["outcome"] == "fixed", report["detail"]
    changed = git(repo.origin, "diff", "--name-only", "main", "hotfix/INC-1234").split()
    assert changed == ["app/users/service.py"]
    assert attack.rule in case.github.pulls[0]["body"]
