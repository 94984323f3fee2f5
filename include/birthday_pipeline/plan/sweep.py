"""The safety net: re-plan the late window, expire what is too old, and find every row due now.

Recovery does not depend on the hourly runs: rows that no hourly run created (scheduler down, DAG paused,
runs failed) are planned here, and rows left scheduled, held by a claim whose lease ran out (on the database
clock) or failed retryably are handed to the same send code. Leases that ran out are forgotten.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import compose, load_sql
from birthday_pipeline.deliver.claims import due_parameters
from birthday_pipeline.plan.planning import AIRFLOW_MAX_MAP_LENGTH, ReleaseBatch, Upserted, Window, upsert_window
from birthday_pipeline.settings import Settings


@dataclasses.dataclass(frozen=True)
class SweepResult:
    window: Window
    upserted: Upserted
    expired: int
    orphans_cancelled: int  # due rows of users who no longer exist
    batches: list[ReleaseBatch]
    expired_by_occasion: dict[str, int]


def late_window(now: datetime, settings: Settings) -> Window:
    """The send instants that may still be delivered at ``now``."""
    return Window(now - timedelta(hours=settings.max_lateness_hours), now)


def sweep_late_window(conn: Any, now: datetime, settings: Settings,
                      max_batches: int = AIRFLOW_MAX_MAP_LENGTH) -> SweepResult:
    """Re-plan, expire and cancel the rows of deleted users as of ``now``, then return the batches of rows due, in one
    transaction: at most ``max_batches`` (Airflow's ``max_map_length``), each of more rows than ``batch_size`` where
    that is needed."""
    window = late_window(now, settings)
    upserted = upsert_window(conn, window, settings)
    due = due_parameters(settings, now, timedelta(seconds=settings.sweep_grace_seconds))
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("sweep/expire"), {**due, "max_lateness_hours": settings.max_lateness_hours})
        expired = dict(Counter(row["occasion"] for row in cursor.fetchall()))
        cursor.execute(compose(conn, "sweep/cancel_orphans", users=[settings.users_relation.parts]), due)
        orphans_cancelled = cursor.rowcount
        cursor.execute(load_sql("sweep/due_batches"), {**due, "batch_size": settings.batch_size,
                                                       "max_batches": max_batches})
        batches = [ReleaseBatch(**row) for row in cursor.fetchall()]
        cursor.execute(load_sql("sweep/forget_leases"))
    conn.commit()
    return SweepResult(window, upserted, sum(expired.values()), orphans_cancelled, batches, expired)
