"""The outcome vocabulary has one source (remediate/outcome.py): the report schema and the docs agree with it."""

import re
from pathlib import Path

from remediate.outcome import REASONS, Outcome, Reason
from remediate.report import load_schema

ROOT = Path(__file__).resolve().parents[2]


def _table_rows(text: str) -> list[list[str]]:
    return [[cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if re.match(r"^\| `", line)]


def test_every_reason_has_an_outcome_and_a_meaning():
    assert set(REASONS) == set(Reason)
    assert all(meaning and outcome in Outcome for outcome, meaning in REASONS.values())


def test_the_schema_enums_are_the_vocabulary():
    properties = load_schema()["properties"]
    assert properties["outcome"]["enum"] == [o.value for o in Outcome]
    assert properties["reason"]["enum"] == [r.value for r in Reason]


def test_the_docs_table_lists_each_reason_with_its_outcome():
    rows = _table_rows((ROOT / "docs" / "outcomes.md").read_text())
    reasons = {row[0]: row[1] for row in rows if len(row) == 3 and row[0] in {r.value for r in Reason}}
    assert reasons == {r.value: o.value for r, (o, _) in REASONS.items()}
    exits = {row[0]: int(row[2]) for row in rows if row[0] in {o.value for o in Outcome}}
    assert exits == {o.value: o.exit_code for o in Outcome} == {"fixed": 0, "escalated": 2, "error": 1, "skipped": 0}
