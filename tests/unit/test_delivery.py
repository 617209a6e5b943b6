"""Delivery's pure parts: the PR title, the branch names."""

from remediate.config import DeliveryConfig
from remediate.deliver.delivery import attempt_branch, hotfix_branch, pr_title
from remediate.incident.payload import Incident


def test_a_long_summary_is_cut_at_a_word_boundary_with_an_ellipsis():
    summary = "Memory leak in UserService.process_queue() caused by commit abc123, which keeps every processed " \
              "message in an unbounded audit log"
    title = pr_title(Incident("INC-1", summary))
    assert title.startswith("hotfix(INC-1): Memory leak in UserService.process_queue()") and title.endswith("…")
    assert len(title) <= len("hotfix(INC-1): ") + 90 and not title.endswith(" …")
    shown = title.removeprefix("hotfix(INC-1): ").removesuffix("…")
    assert summary.startswith(shown) and summary[len(shown)] in " ,;:.-"  # the last word shown is whole
    assert pr_title(Incident("INC-1", "short  and\nspaced")) == "hotfix(INC-1): short and spaced"
    assert pr_title(Incident("INC-1", "")) == "hotfix(INC-1): automated fix"


def test_branch_names_come_from_one_place():
    incident = Incident("INC 7/../x")
    assert hotfix_branch(DeliveryConfig(branch_prefix="fix/"), incident) == f"fix/{incident.branch_slug}"
    assert attempt_branch(incident) == f"hotfix-attempt/{incident.branch_slug}"
