"""What happened, in numbers: the summary line each run ends with, and what the Birthdays page shows.

Summary lines carry counts and instants only. The page's reports (for a day, for a user) are served to
logged-in Airflow users and never logged.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from birthday_pipeline.occasions import OCCASIONS, Occasion, date_columns, occasion_names, source_dates
from birthday_pipeline.planning import PlannedNotification, User, Window, plan_occasion, planning_zone
from birthday_pipeline.settings import Settings
from birthday_pipeline.statements import compose, load_sql

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


# The most rows one page of the Birthdays page lists or plots.
ROW_LIMIT = 5000


def task_log_path(dag_id: str | None, run_id: str | None, task_id: str | None, map_index: int | None,
                  try_number: int | None) -> str | None:
    """The Airflow UI path of a task instance's log (as ``TaskInstance.log_url`` builds it), or None."""
    if not (dag_id and run_id and task_id):
        return None
    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    try_part = f"?try_number={try_number}" if try_number else ""
    return f"/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}{mapped}{try_part}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _problem_reason(status: str, last_error: str | None, retry_after: datetime | None) -> str:
    if status != "failed":
        return last_error or status
    if retry_after is None:
        return "refused by the webhook; not retried"
    return f"retryable; next try from {retry_after.isoformat()}"


def day_report(conn: Any, day: date) -> dict[str, Any]:
    """Everything the Birthdays page shows for the celebrated local date ``day``: counts, plots, problems."""
    parameters = {"day": day, "limit": ROW_LIMIT}
    counts = {name: dict.fromkeys(STATUSES, 0) for name in OCCASIONS}
    with conn.cursor() as cursor:
        cursor.execute(load_sql("report/day_counts"), parameters)
        for occasion, status, count in cursor.fetchall():
            counts.setdefault(occasion, dict.fromkeys(STATUSES, 0))[status] = count
        cursor.execute(load_sql("report/day_lateness"), parameters)
        lateness = [
            {"id": row[0], "occasion": row[1], "send_at": _iso(row[2]), "sent_at": _iso(row[3]),
             "lateness_s": round(row[4], 3)}
            for row in cursor.fetchall()
        ]
        cursor.execute(load_sql("report/day_sends_per_hour"), parameters)
        per_hour = [{"hour": _iso(hour), "occasion": occasion, "count": count}
                    for hour, occasion, count in cursor.fetchall()]
        cursor.execute(load_sql("report/day_problems"), parameters)
        problems = [
            {"id": row[0], "user_id": row[1], "occasion": row[2], "status": row[3], "send_at": _iso(row[4]),
             "attempts": row[5], "reason": _problem_reason(row[3], row[6], row[7]),
             "last_error": row[8] if row[8] is not None else row[6], "last_http_status": row[9],
             "last_attempt_at": _iso(row[10]), "task_log": task_log_path(*row[11:16])}
            for row in cursor.fetchall()
        ]
    conn.rollback()
    return {"day": day.isoformat(), "counts": counts, "lateness": lateness, "sends_per_hour": per_hour,
            "problems": problems}


def user_report(conn: Any, user_id: int, settings: Settings, now: datetime) -> dict[str, Any] | None:
    """The user's next planned send per occasion (UTC and local) and past notifications; None if no such user."""
    with conn.cursor() as cursor:
        cursor.execute(compose(conn, "report/user", date_columns=[("u", column) for column in date_columns()],
                               users=[settings.users_relation.parts]),
                       {"user_id": user_id})
        found = cursor.fetchone()
        if found is None:
            conn.rollback()
            return None
        cursor.execute(load_sql("report/user_notifications"), {"user_id": user_id, "limit": ROW_LIMIT})
        rows = cursor.fetchall()
    conn.rollback()
    user = User(found[0], found[4], found[3], found[1], found[2], other_dates=source_dates(found[4:]))
    by_key = {(row[1], row[2]): row for row in rows}
    upcoming = []
    for occasion in OCCASIONS.values():
        if user.date_for(occasion) is None:
            continue
        nxt = next_send(user, occasion, settings, now)
        if nxt is None:
            continue
        planned_row = by_key.get((occasion.name, nxt.occasion_date))
        zone = planning_zone(user.timezone, settings)
        upcoming.append({
            "occasion": occasion.name, "occasion_date": nxt.occasion_date.isoformat(), "status": nxt.status,
            "reason": nxt.reason, "send_at_utc": _iso(nxt.send_at),
            "send_at_local": _iso(nxt.send_at.astimezone(zone)) if nxt.send_at else None,
            "zone": zone.key, "planned_row": planned_row[0] if planned_row else None,
            "planned_status": planned_row[3] if planned_row else None,
        })
    past = [
        {"id": row[0], "occasion": row[1], "occasion_date": row[2].isoformat(), "status": row[3],
         "send_at": _iso(row[4]), "sent_at": _iso(row[5]), "attempts": row[6], "last_error": row[7],
         "webhook_id": str(row[8]), "task_log": task_log_path(*row[9:14])}
        for row in rows
    ]
    return {"user_id": user.id, "timezone": user.timezone, "next": upcoming, "notifications": past}


def next_send(user: User, occasion: Occasion, settings: Settings, now: datetime) -> PlannedNotification | None:
    """The user's first notification for ``occasion`` whose instant is after ``now`` (by the planning rules)."""
    for year in range(now.year - 1, now.year + 3):
        instant, planned = plan_occasion(user, year, settings, occasion)
        if instant > now:
            return planned
    return None
