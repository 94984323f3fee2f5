"""The closing summary of a run: one line per occasion, counts only."""

from __future__ import annotations

from datetime import UTC, datetime

from birthday_pipeline.planning import Window
from birthday_pipeline.report import summary_lines


def test_one_summary_line_per_occasion_with_the_counts_that_are_not_zero() -> None:
    window = Window(datetime(2026, 3, 10, 9, tzinfo=UTC), datetime(2026, 3, 10, 10, tzinfo=UTC))
    counts = {"birthday": {"scheduled": 0, "sent": 118, "failed": 2}, "work_anniversary": {"sent": 0}}
    assert summary_lines("hourly", window, counts) == [
        "Summary hourly birthday [2026-03-10T09:00:00+00:00, 2026-03-10T10:00:00+00:00): 120 due; sent 118, failed 2",
        "Summary hourly work_anniversary [2026-03-10T09:00:00+00:00, 2026-03-10T10:00:00+00:00): 0 due",
    ]
