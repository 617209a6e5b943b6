"""The outcome vocabulary: how a run ends, why, and the one exception type that ends it.

`Outcome` and `Reason` are public: `outcome` and `reason` are Actions outputs and report fields.
This module is their one source; the report schema's enums and the table in docs/outcomes.md are
checked against it by the tests.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Outcome(StrEnum):
    FIXED = "fixed"
    ESCALATED = "escalated"
    ERROR = "error"
    SKIPPED = "skipped"  # the event was not for remediate to act on (docs/review-and-validation.md)

    @property
    def exit_code(self) -> int:
        return {Outcome.FIXED: 0, Outcome.ESCALATED: 2, Outcome.ERROR: 1, Outcome.SKIPPED: 0}[self]


class Reason(StrEnum):
    # fixed
    TESTS_PASSED = "tests_passed"
    TESTS_PASS_EXCEPT_PRE_EXISTING = "tests_pass_except_pre_existing_failures"
    RECOVERED = "recovered"
    # escalated: the agent loop stopped without a fix
    MODEL_GAVE_UP = "model_gave_up"
    GUARDRAIL_REFUSALS = "guardrail_refusals"
    BUDGET_EXHAUSTED = "budget_exhausted"
    MAX_LLM_CALLS = "max_llm_calls"
    WALL_TIME = "wall_time"
    NO_CHANGE = "no_change"
    HOOK_BLOCKED = "hook_blocked"
    # escalated: the fix did not pass or could not be shipped
    TEST_SETUP_FAILED = "test_setup_failed"
    TESTS_FAILED = "tests_failed"
    NOT_COMMITTABLE = "not_committable"
    PUSH_REJECTED = "push_rejected"
    BRANCH_DIVERGED = "branch_diverged"
    PROPOSAL_REFUSED = "proposal_refused"
    # escalated: staging validation
    NOT_RECOVERED = "not_recovered"
    VALIDATION_UNKNOWN = "validation_unknown"
    # skipped: the event asks nothing of remediate
    NOT_TRIGGERED = "not_triggered"
    NOT_AUTHORIZED = "not_authorized"
    NOT_A_HOTFIX = "not_a_hotfix"
    NO_INCIDENT = "no_incident"
    # error: the run could not proceed
    BAD_INPUT = "bad_input"
    MCP_UNAVAILABLE = "mcp_unavailable"
    LLM_UNAVAILABLE = "llm_unavailable"
    GITHUB_FAILED = "github_failed"
    GIT_FAILED = "git_failed"
    INTERNAL_ERROR = "internal_error"
    NOT_STARTED = "not_started"

    @classmethod
    def parse(cls, text: str) -> Reason:
        """A reason read back from a report (another job's): unknown text is not trusted as one."""
        return cls(text) if text in cls._value2member_map_ else cls.INTERNAL_ERROR


# The outcome each reason belongs to, and what it means to the person reading the report.
REASONS: dict[Reason, tuple[Outcome, str]] = {
    Reason.TESTS_PASSED: (Outcome.FIXED, "the change was made and the affected tests pass"),
    Reason.TESTS_PASS_EXCEPT_PRE_EXISTING: (
        Outcome.FIXED, "the affected tests pass except failures that fail on the code before the fix too; "
                       "they are named in the report"),
    Reason.RECOVERED: (Outcome.FIXED, "staging validation: every signal was healthy for its last `consecutive` "
                                      "samples after the deployment"),
    Reason.MODEL_GAVE_UP: (Outcome.ESCALATED, "the model called escalate; its reason is the detail"),
    Reason.GUARDRAIL_REFUSALS: (Outcome.ESCALATED, "the model reached guardrails.max_refusals refused tool calls"),
    Reason.BUDGET_EXHAUSTED: (Outcome.ESCALATED, "the next LLM call could exceed costs.budget_usd"),
    Reason.MAX_LLM_CALLS: (Outcome.ESCALATED, "agent.max_llm_calls was reached"),
    Reason.WALL_TIME: (Outcome.ESCALATED, "agent.max_wall_seconds was reached"),
    Reason.NO_CHANGE: (Outcome.ESCALATED, "the model finished without changing any file"),
    Reason.HOOK_BLOCKED: (Outcome.ESCALATED, "a pre_llm_call hook blocked the model call, or failed and so "
                                             "blocked it (docs/hooks.md)"),
    Reason.TEST_SETUP_FAILED: (Outcome.ESCALATED, "tests.setup failed, before any model call"),
    Reason.TESTS_FAILED: (Outcome.ESCALATED, "the affected tests fail with the change (or error, or time out)"),
    Reason.NOT_COMMITTABLE: (Outcome.ESCALATED, "the vetted change cannot be committed as vetted "
                                                "(a path .gitignore covers)"),
    Reason.PUSH_REJECTED: (Outcome.ESCALATED, "origin refused the push (protected branch, server hook)"),
    Reason.BRANCH_DIVERGED: (Outcome.ESCALATED, "the hotfix branch on origin has commits remediate did not make"),
    Reason.PROPOSAL_REFUSED: (Outcome.ESCALATED, "command: deliver refused the first job's proposal: the base "
                                                 "branch's guardrails refuse it, or it does not apply to its base"),
    Reason.NOT_RECOVERED: (Outcome.ESCALATED, "staging validation: a signal was unhealthy in its last "
                                              "`consecutive` samples"),
    Reason.VALIDATION_UNKNOWN: (Outcome.ESCALATED, "staging validation: a signal could not be read, so nothing "
                                                   "says the fix worked"),
    Reason.NOT_TRIGGERED: (Outcome.SKIPPED, "the event asks nothing of remediate: a comment without the command, "
                                            "a review that requests no changes (or review runs are off), a "
                                            "deployment that did not succeed or to an environment not validated"),
    Reason.NOT_AUTHORIZED: (Outcome.SKIPPED, "the comment or review is by a bot or by someone without write, "
                                             "maintain or admin permission; nothing ran and nothing was replied"),
    Reason.NOT_A_HOTFIX: (Outcome.SKIPPED, "the pull request is not one remediate opened (branch prefix, the "
                                           "Incident-Id trailer, the marker in its description)"),
    Reason.NO_INCIDENT: (Outcome.SKIPPED, "the deployed commits since the last validated deployment carry no "
                                          "Incident-Id trailer"),
    Reason.BAD_INPUT: (Outcome.ERROR, "bad input or configuration; the detail names the field"),
    Reason.MCP_UNAVAILABLE: (Outcome.ERROR, "an MCP server could not be reached or failed"),
    Reason.LLM_UNAVAILABLE: (Outcome.ERROR, "the LLM endpoint failed after its retries"),
    Reason.GITHUB_FAILED: (Outcome.ERROR, "a GitHub API call failed"),
    Reason.GIT_FAILED: (Outcome.ERROR, "a git command failed"),
    Reason.INTERNAL_ERROR: (Outcome.ERROR, "a bug in remediate; the traceback is in the report's warnings"),
    Reason.NOT_STARTED: (Outcome.ERROR, "the run ended before any stage began"),
}


class Stop(Exception):
    """Ends an agent loop or a run: the pipeline catches it once and turns it into the outcome."""

    outcome: ClassVar[Outcome] = Outcome.ESCALATED

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = Reason(reason)
        self.detail = detail


def stop(outcome: Outcome, reason: Reason, detail: str) -> Stop:
    """A Stop with the given outcome: how a first job's ending is carried into the second (two-job mode)."""
    ended = Stop(reason, detail)
    ended.outcome = outcome
    return ended


class Failure(Stop):
    """The run could not proceed (a service, git, bad input): outcome `error`; each subclass has its reason."""

    outcome = Outcome.ERROR
    reason_code: ClassVar[Reason] = Reason.INTERNAL_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(self.reason_code, detail)
