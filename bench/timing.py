"""What the benches share about test runs."""

from __future__ import annotations

from typing import Any


def busy(runs: list[dict[str, Any]]) -> float:
    """How long any of the report's test runs was going: the union of their intervals (`started_s`,
    `duration_s`), so runs side by side count once."""
    total, end = 0.0, 0.0
    for start, stop in sorted((r.get("started_s", 0.0), r.get("started_s", 0.0) + (r.get("duration_s") or 0.0))
                              for r in runs):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total
