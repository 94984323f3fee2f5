"""What happened, in numbers: the summary line each run ends with, and what the Birthdays page shows.

Summary lines carry counts and instants only. The page's reports (for a day in a chosen time zone, for a
user) and the health figures of ``/birthdays/metrics`` are served only to Airflow users who may read the
hourly DAG, and never logged.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import compose, load_sql
from birthday_pipeline.plan.planning import (
    MAX_ZONE_SHOWN,
    PlannedNotification,
    User,
    Window,
    not_unique_reason,
    plan_occasion,
    planning_zone,
    user_identifiers,
)
from birthday_pipeline.rules.occasions import Occasion
from birthday_pipeline.rules.timezones import load_zone
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status

STATUSES = tuple(status.value for status in Status)


def window_counts(conn: Any, window: Window, settings: Settings) -> dict[str, dict[str, int]]:
    """For every occasion of ``settings``, how many of its notifications due in ``window`` are in each status."""
    occasions = settings.occasion_registry.names()
    counts = {name: dict.fromkeys(STATUSES, 0) for name in occasions}
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("report/window_counts"),
                       {"occasions": occasions, "window_start": window.start, "window_end": window.end})
        for row in cursor.fetchall():
            counts[row["occasion"]][row["status"]] = row["count"]
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


# The most rows one page of the Birthdays page lists or plots.
ROW_LIMIT = 5000
# The quantiles of delivery lateness that /birthdays/metrics exports.
LATENESS_QUANTILES = (0.5, 0.9, 0.99)


def task_log_path(dag_id: str | None, run_id: str | None, task_id: str | None, map_index: int | None,
                  try_number: int | None, ui_root: str = "/") -> str | None:
    """The Airflow UI path of a task instance's log (as ``TaskInstance.log_url`` builds it) under ``ui_root``
    (the path of ``[api] base_url``), or None."""
    if not (dag_id and run_id and task_id):
        return None
    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    try_part = f"?try_number={try_number}" if try_number else ""
    return (f"{ui_root.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"
            f"{mapped}{try_part}")


def _attempt_log_path(row: dict[str, Any], ui_root: str) -> str | None:
    return task_log_path(row["dag_id"], row["run_id"], row["task_id"], row["map_index"], row["try_number"], ui_root)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _problem_reason(status: str, last_error: str | None, retry_after: datetime | None) -> str:
    if status != Status.FAILED:
        return last_error or status
    if retry_after is None:
        return "refused by the webhook; not retried"
    return f"retryable; next try from {retry_after.isoformat()}"


@dataclasses.dataclass(frozen=True)
class Day:
    """One calendar day in a time zone: ``[start, end)`` in UTC, and the UTC start of each of its local hours
    (23, 24 or 25 of them; a DST change moves a boundary, a skipped hour has none, a repeated one has two)."""

    date: date
    zone: ZoneInfo
    start: datetime
    end: datetime
    hour_starts: tuple[datetime, ...]

    @classmethod
    def of(cls, day: date, zone: ZoneInfo) -> Day:
        start = datetime.combine(day, time(0), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        # Every local hour starts on a quarter of a UTC hour (offsets are whole quarters), so stepping by 15
        # minutes finds each one, including a repeated hour, and none for a skipped one.
        steps = int((end - start) / _QUARTER)
        hour_starts = tuple(instant for instant in (start + step * _QUARTER for step in range(steps))
                            if instant.astimezone(zone).minute == 0)
        return cls(day, zone, start, end, hour_starts)

    def parameters(self) -> dict[str, Any]:
        return {"day": self.date, "day_start": self.start, "day_end": self.end}


_QUARTER = timedelta(minutes=15)


def day_counts(conn: Any, day: Day, settings: Settings) -> dict[str, dict[str, int]]:
    """For every occasion of ``settings`` (and any other the day's rows name), how many of the day's notifications
    are in each status."""
    counts = {name: dict.fromkeys(STATUSES, 0) for name in settings.occasion_registry}
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("report/day_counts"), day.parameters())
        for row in cursor.fetchall():
            counts.setdefault(row["occasion"], dict.fromkeys(STATUSES, 0))[row["status"]] = row["count"]
    conn.rollback()
    return counts


def day_report(conn: Any, day: Day, settings: Settings, ui_root: str = "/") -> dict[str, Any]:
    """Everything the Birthdays page shows for ``day``: the notifications whose send instant falls in it (and
    the invalid ones celebrated that date): counts, lateness, deliveries per local hour and the problems (failed,
    invalid, expired and cancelled, each with its reason)."""
    parameters = {**day.parameters(), "limit": ROW_LIMIT}
    counts = day_counts(conn, day, settings)
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("report/day_lateness"), parameters)
        lateness = [
            {"id": row["id"], "occasion": row["occasion"], "send_at": _iso(row["send_at"]),
             "sent_at": _iso(row["sent_at"]), "lateness_s": round(row["lateness_s"], 3)}
            for row in cursor.fetchall()
        ]
        cursor.execute(load_sql("report/day_sends_per_hour"), {
            "hour_starts": list(day.hour_starts), "hour_ends": [*day.hour_starts[1:], day.end]})
        per_hour = [{"hour": _iso(row["hour"]), "occasion": row["occasion"], "count": row["count"]}
                    for row in cursor.fetchall()]
        cursor.execute(load_sql("report/day_problems"), parameters)
        problems = [
            {"id": row["id"], "user_id": row["user_id"], "occasion": row["occasion"], "status": row["status"],
             "send_at": _iso(row["send_at"]), "attempts": row["attempts"],
             "reason": _problem_reason(row["status"], row["last_error"], row["retry_after"]),
             "last_error": row["attempt_error"] if row["attempt_error"] is not None else row["last_error"],
             "last_http_status": row["http_status"], "last_attempt_at": _iso(row["finished_at"]),
             "task_log": _attempt_log_path(row, ui_root)}
            for row in cursor.fetchall()
        ]
    conn.rollback()
    return {"day": day.date.isoformat(), "timezone": day.zone.key, "start": _iso(day.start), "end": _iso(day.end),
            "hours": [_iso(hour) for hour in day.hour_starts], "counts": counts, "lateness": lateness,
            "sends_per_hour": per_hour, "problems": problems}


@dataclasses.dataclass(frozen=True)
class Health:
    """What /birthdays/metrics exports, as of the database's clock ``now``."""

    now: datetime
    counts: dict[str, dict[str, dict[str, int]]]  # "today" / "yesterday" (UTC) -> occasion -> status -> count
    lateness_quantiles: dict[float, float | None]  # today's deliveries
    lateness_sum: float
    lateness_count: int
    unsent_due: int
    oldest_unsent_due_seconds: float


def health(conn: Any, settings: Settings) -> Health:
    """The counts per status of today and yesterday (UTC days), today's lateness quantiles, and the rows due
    but not sent, all from the database and its clock: the same whichever API server process answers."""
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("report/unsent_due"), {"max_attempts": settings.max_attempts})
        due = cursor.fetchone()
    conn.rollback()
    today = due["now"].astimezone(UTC).date()
    zone = load_zone("UTC")
    days = {"today": Day.of(today, zone), "yesterday": Day.of(today - timedelta(days=1), zone)}
    counts = {name: day_counts(conn, day, settings) for name, day in days.items()}
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("report/lateness_quantiles"),
                       {**days["today"].parameters(), "quantiles": list(LATENESS_QUANTILES)})
        lateness = cursor.fetchone()
    conn.rollback()
    quantiles = lateness["quantiles"] or [None] * len(LATENESS_QUANTILES)
    return Health(due["now"], counts, dict(zip(LATENESS_QUANTILES, quantiles, strict=True)), lateness["total"],
                  lateness["count"], due["count"], due["oldest_seconds"])


def user_report(conn: Any, user_id: int, settings: Settings, now: datetime,
                ui_root: str = "/") -> dict[str, Any] | None:
    """The user's next planned send per occasion (UTC and local) and past notifications; None if no such user."""
    with dict_cursor(conn) as cursor:
        cursor.execute(compose(conn, "report/user", **user_identifiers(settings, versions_of=("u", "id"))),
                       {"user_id": user_id})
        found = cursor.fetchone()
        if found is None:
            conn.rollback()
            return None
        cursor.execute(load_sql("report/user_notifications"), {"user_id": user_id, "limit": ROW_LIMIT})
        rows = cursor.fetchall()
    conn.rollback()
    occasions = settings.occasion_registry
    dates = occasions.source_dates([found[column] for column in occasions.date_columns])
    user = User(found["id"], dates.get("birthday"), found["timezone"], found["first_name"], found["last_name"],
                other_dates=dates, opted_out=found["opted_out"])
    by_key = {(row["occasion"], row["occasion_date"]): row for row in rows}
    upcoming = []
    for occasion in occasions.values():
        if user.date_for(occasion) is None:
            continue
        nxt = next_send(user, occasion, settings, now)
        if nxt is None:
            continue
        if found["user_versions"] > 1:
            nxt = dataclasses.replace(nxt, send_at=None, status=Status.INVALID,
                                      reason=not_unique_reason(found["user_versions"]))
        planned_row = by_key.get((occasion.name, nxt.occasion_date))
        zone = planning_zone(user.timezone, settings)
        upcoming.append({
            "occasion": occasion.name, "occasion_date": nxt.occasion_date.isoformat(), "status": nxt.status,
            "reason": nxt.reason, "send_at_utc": _iso(nxt.send_at),
            "send_at_local": _iso(nxt.send_at.astimezone(zone)) if nxt.send_at else None,
            "zone": zone.key, "planned_row": planned_row["id"] if planned_row else None,
            "planned_status": planned_row["status"] if planned_row else None,
        })
    past = [
        {"id": row["id"], "occasion": row["occasion"], "occasion_date": row["occasion_date"].isoformat(),
         "status": row["status"], "send_at": _iso(row["send_at"]), "sent_at": _iso(row["sent_at"]),
         "attempts": row["attempts"], "last_error": row["last_error"], "webhook_id": str(row["webhook_id"]),
         "task_log": _attempt_log_path(row, ui_root)}
        for row in rows
    ]
    shown_zone = user.timezone if user.timezone is None else user.timezone[:MAX_ZONE_SHOWN]
    return {"user_id": user.id, "timezone": shown_zone, "next": upcoming, "notifications": past}


def next_send(user: User, occasion: Occasion, settings: Settings, now: datetime) -> PlannedNotification | None:
    """The user's first notification for ``occasion`` whose instant is after ``now`` (by the planning rules)."""
    for year in range(now.year - 1, now.year + 3):
        instant, planned = plan_occasion(user, year, settings, occasion)
        if instant > now:
            return planned
    return None
