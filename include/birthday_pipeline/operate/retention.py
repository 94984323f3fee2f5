"""Retention: delete notifications and attempt rows past their keep period, in short batches beside live sends.

What is kept, as of a run at ``now``:

- attempt rows (``notification_attempts``) that started within ``attempt_retention_days`` (90);
- notifications celebrated within ``retention_days`` (400, at least 366, so every user's last
  occasion is kept and deleting history never makes a sent notification plannable again);
- whatever the pipeline may still act on, however old: a notification whose instant is inside the late
  window (``max_lateness_hours``: the sweep would plan it again), one still ``scheduled``,
  ``sending`` or ``failed`` (a send may still take it, the sweep still expires it), and any row another
  transaction holds at that moment (skipped, never waited for; the next run takes it).

Each batch is one short transaction of at most ``batch_size`` rows, so no statement holds its row locks
longer than a few milliseconds, and only locks on rows that no claim, send or upsert wants. Each batch goes
on after the position where the last one stopped, along an index, so a run's cost follows what it deletes.
Running it again deletes nothing more; logs carry counts only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.plan.sweep import late_window
from birthday_pipeline.settings import Settings

BATCH_SIZE = 1000
# A batch never queues behind another transaction's lock for long: it fails instead, and the task retries.
LOCK_TIMEOUT = "1s"


@dataclasses.dataclass(frozen=True)
class RetentionBounds:
    """What a run at one moment may delete: attempts started before ``attempts_before``, notifications
    celebrated before ``notifications_before`` whose instant is before ``late_from``."""

    attempts_before: datetime
    notifications_before: date
    late_from: datetime


@dataclasses.dataclass(frozen=True)
class RetentionResult:
    bounds: RetentionBounds
    attempts_deleted: int
    notifications_deleted: int
    batches: int


def retention_bounds(now: datetime, settings: Settings) -> RetentionBounds:
    return RetentionBounds(
        attempts_before=now - timedelta(days=settings.attempt_retention_days),
        notifications_before=(now - timedelta(days=settings.retention_days)).date(),
        late_from=late_window(now, settings).start,
    )


def delete_old_history(conn: Any, now: datetime, settings: Settings, batch_size: int = BATCH_SIZE) -> RetentionResult:
    """Delete the attempt rows, then the notifications, that are past their keep period as of ``now``."""
    bounds = retention_bounds(now, settings)
    attempts, attempt_batches = _delete_in_batches(
        conn, "retention/delete_attempts", {"cutoff": bounds.attempts_before, "batch_size": batch_size},
        position=("after_started_at", "after_id"), start=(datetime.min.replace(tzinfo=now.tzinfo), 0),
        last=lambda row: (row["last_started_at"], row["last_id"]), batch_size=batch_size,
    )
    notifications, notification_batches = _delete_in_batches(
        conn, "retention/delete_notifications",
        {"keep_from": bounds.notifications_before, "late_from": bounds.late_from, "batch_size": batch_size},
        position=("after_occasion_date", "after_id"), start=(date.min, 0),
        last=lambda row: (row["last_occasion_date"], row["last_id"]), batch_size=batch_size,
    )
    return RetentionResult(bounds, attempts, notifications, attempt_batches + notification_batches)


def _delete_in_batches(conn: Any, statement: str, parameters: dict[str, Any], *, position: tuple[str, str],
                       start: tuple[Any, int], last: Callable[[dict], tuple[Any, int]],
                       batch_size: int) -> tuple[int, int]:
    """Run one batch statement until it deletes fewer than ``batch_size`` rows; (rows deleted, batches)."""
    deleted = batches = 0
    after = start
    while True:
        with dict_cursor(conn) as cursor:
            cursor.execute(load_sql("schema/set_lock_timeout"), {"lock_timeout": LOCK_TIMEOUT})
            cursor.execute(load_sql(statement), {**parameters, **dict(zip(position, after, strict=True))})
            row = cursor.fetchone()
        conn.commit()
        batches += 1
        if row is None:
            return deleted, batches
        deleted += row["deleted"]
        if row["deleted"] < batch_size:
            return deleted, batches
        after = last(row)
