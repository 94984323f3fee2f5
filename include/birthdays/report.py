"""What happened, in numbers: the summary line each run ends with, per occasion.

Counts and instants only; no names, no dates of birth.
"""

from __future__ import annotations

from typing import Any

from include.birthdays.occasions import OCCASIONS, occasion_names
from include.birthdays.planning import Window
from include.birthdays.sql import load_sql

STATUSES = ("scheduled", "sending", "sent", "failed", "expired", "invalid", "cancelled")


def window_counts(conn: Any, window: Window) -> dict[str, dict[str, int]]:
    """For every occasion, how many of its notifications due in ``window`` are in each status."""
    counts = {name: dict.fromkeys(STATUSES, 0) for name in OCCASIONS}
    with conn.cursor() as cursor:
        cursor.execute(load_sql("report/window_counts"),
                       {"occasions": occasion_names(), "window_start": window.start, "window_end": window.end})
        for occasion, status, count in cursor.fetchall():
            counts[occasion][status] = count
    conn.rollback()
    return counts


def summary_lines(what: str, window: Window, counts: dict[str, dict[str, int]]) -> list[str]:
    """One line per occasion: ``Summary <what> <occasion> [start, end): N due; sent .., failed .., ...``."""
    lines = []
    for occasion, by_status in counts.items():
        detail = ", ".join(f"{status} {count}" for status, count in by_status.items() if count)
        lines.append(
            f"Summary {what} {occasion} [{window.start.isoformat()}, {window.end.isoformat()}): "
            f"{sum(by_status.values())} due" + (f"; {detail}" if detail else "")
        )
    return lines
