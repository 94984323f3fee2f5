"""What the operators are told, and when: the alerts a run ends with, without any personal data.

At the end of each run of the hourly and the sweep DAG (their ``summarize`` teardown, once per run, never per
mapped task):

- **problems**: the notifications that became ``failed`` for good (refused by the webhook, or out of
  attempts), ``expired`` or ``invalid`` since the last alert: counts per occasion and status, why they
  failed (the HTTP status only), the first ids and a link to the run. Each problem is reported once, by the
  first run to end after it appeared (``notification_alerts`` remembers what was reported);
- **recovered**: the first run of a DAG that ends clean (no failed task, no new problem) after one of its
  runs reported problems;
- **late** (sweep runs): hourly windows whose sends are not finished ``late_alert_minutes`` after the
  window ended, with their unsent rows per occasion and status, and later the line saying they caught up;
- **endpoint disabled** (sweep runs): a webhook endpoint answered 410 Gone and nothing is sent to it, with the
  count of notifications waiting and how to enable it again; later the line saying it was enabled.

Alerts carry counts, statuses, ids, HTTP statuses, instants and links; never names, birthdays, message
text, time zones or error text from the network (which may hold URLs). What was reported and what is open
is written in the same transaction that sends the alerts: an alert that could not be sent is sent again
by the next run.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.deliver.claims import due_parameters
from birthday_pipeline.ids import ENDPOINT_DAG, HOURLY_DAG
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status

log = logging.getLogger(__name__)

SOURCE = "birthday-pipeline"
HOURLY_DAG_ID = HOURLY_DAG
# How many notification ids an alert lists; the counts are always complete.
MAX_IDS = 20
PROBLEMS, LATE, ENDPOINT_DISABLED = "problems", "late", "endpoint_disabled"
_HTTP_STATUS = re.compile(r"HTTP \d{3}")


@dataclasses.dataclass(frozen=True)
class Run:
    """The run an alert is about: its DAG, its id, and the Airflow UI's base URL (``[api] base_url``)."""

    dag_id: str
    run_id: str
    ui_base_url: str

    @property
    def url(self) -> str:
        return f"{self.ui_base_url.rstrip('/')}/dags/{quote(self.dag_id)}/runs/{quote(self.run_id, safe='')}"

    def dag_url(self, dag_id: str) -> str:
        return f"{self.ui_base_url.rstrip('/')}/dags/{quote(dag_id)}"


@dataclasses.dataclass(frozen=True)
class Alert:
    """One message: ``event`` names its kind; ``text`` is what a person reads (Slack and Teams show it);
    ``details`` are the same facts as fields."""

    event: str
    subject: str
    text: str
    details: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The JSON body of an HTTP alert."""
        return {"text": self.text, "event": self.event, "source": SOURCE, **self.details}


Send = Callable[[Alert], None]


def report_run(conn: Any, run: Run, *, tasks_succeeded: bool, settings: Settings, send: Send,
               late_check_at: datetime | None = None) -> list[Alert]:
    """Work out the alerts ``run`` ends with, ``send`` each, then record them; return them.

    ``tasks_succeeded`` says whether every other task of the run succeeded. With ``late_check_at`` (the
    sweep's run time), hourly windows are checked for unfinished sends, and endpoints for being disabled (with
    the notifications waiting for them), as of that instant. If ``send``
    raises, nothing is recorded, so the next run reports the same again.
    """
    try:
        problems = _claim_problems(conn, settings)
        found = []
        if problems:
            found.append(problems_alert(run, problems))
            _open(conn, PROBLEMS, [run.dag_id], run)
        elif tasks_succeeded:
            found.extend(recovered_alert(run, closed) for closed in _close(conn, PROBLEMS, [run.dag_id]))
        if late_check_at is not None:
            found.extend(_late_alerts(conn, run, late_check_at, settings))
            found.extend(_endpoint_alerts(conn, run, late_check_at, settings))
        for alert in found:
            send(alert)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    for alert in found:
        log.info("Alert %s sent: %s", alert.event, alert.subject)
    return found


@dataclasses.dataclass(frozen=True)
class Problem:
    id: int
    occasion: str
    status: str
    failure: str | None  # why a failed row failed: "refused (HTTP 410)", "out of attempts (no HTTP answer)"


def _claim_problems(conn: Any, settings: Settings) -> list[Problem]:
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("alerts/claim_problems"), {
            "lookback": timedelta(hours=settings.max_lateness_hours), "max_attempts": settings.max_attempts})
        return [Problem(row["id"], row["occasion"], row["status"],
                        _failure(row["refused"], row["last_error"]) if row["status"] == Status.FAILED else None)
                for row in cursor.fetchall()]


def _failure(refused: bool, last_error: str | None) -> str:
    # Only the HTTP status is passed on: the failures group by answer, and no other text reaches the chat.
    status = _HTTP_STATUS.match(last_error) if last_error else None
    answer = status.group() if status else "no HTTP answer"
    return f"{'refused' if refused else 'out of attempts'} ({answer})"


def problems_alert(run: Run, problems: list[Problem]) -> Alert:
    counts: dict[str, dict[str, int]] = {}
    failures: dict[str, int] = {}
    for problem in problems:
        by_status = counts.setdefault(problem.occasion, {})
        by_status[problem.status] = by_status.get(problem.status, 0) + 1
        if problem.failure:
            failures[problem.failure] = failures.get(problem.failure, 0) + 1
    first_ids = [problem.id for problem in problems[:MAX_IDS]]
    subject = (f"{SOURCE}: run {run.run_id} of {run.dag_id} ended with {_plural(len(problems), 'notification')}"
               " that will not be delivered")
    lines = [subject + ":"]
    lines += [f"  {occasion}: {_join_counts(by_status)}" for occasion, by_status in sorted(counts.items())]
    lines += [f"  failed, {failure}: {count}" for failure, count in sorted(failures.items())]
    lines.append(f"  first ids: {', '.join(map(str, first_ids))}" + (" ..." if len(problems) > MAX_IDS else ""))
    lines.append(f"  run: {run.url}")
    return Alert("notifications_failed", subject, "\n".join(lines), {
        "dag_id": run.dag_id, "run_id": run.run_id, "run_url": run.url, "total": len(problems),
        "counts": counts, "failures": failures, "first_ids": first_ids})


def recovered_alert(run: Run, closed: dict[str, Any]) -> Alert:
    subject = f"{SOURCE}: {run.dag_id} recovered: run {run.run_id} ended clean"
    text = (f"{subject} (problems were reported by run {closed['run_id']} at "
            f"{_utc(closed['opened_at'])}).\n  run: {run.url}")
    return Alert("recovered", subject, text, {
        "dag_id": run.dag_id, "run_id": run.run_id, "run_url": run.url, "reported_by_run_id": closed["run_id"],
        "reported_at": _utc(closed["opened_at"])})


@dataclasses.dataclass
class LateWindow:
    start: datetime
    counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    first_ids: list[int] = dataclasses.field(default_factory=list)

    @property
    def subject(self) -> str:
        return _utc(self.start)

    @property
    def total(self) -> int:
        return sum(sum(by_status.values()) for by_status in self.counts.values())

    def as_details(self) -> dict[str, Any]:
        return {"window_start": _utc(self.start), "window_end": _utc(self.start + timedelta(hours=1)),
                "unsent": self.total, "counts": self.counts, "first_ids": self.first_ids}


def late_windows(conn: Any, now: datetime, settings: Settings) -> list[LateWindow]:
    """The hourly windows that ended ``late_alert_minutes`` or more before ``now`` with sends left."""
    late_after = timedelta(minutes=settings.late_alert_minutes)
    cutoff = (now - late_after).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    windows: dict[datetime, LateWindow] = {}
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("alerts/late_windows"), {
            "occasions": settings.occasion_registry.names(), "now": now,
            "max_lateness": timedelta(hours=settings.max_lateness_hours), "late_cutoff": cutoff,
            "max_attempts": settings.max_attempts, "max_ids": MAX_IDS})
        for row in cursor.fetchall():
            window = windows.setdefault(row["window_start"], LateWindow(row["window_start"]))
            window.counts.setdefault(row["occasion"], {})[row["status"]] = row["count"]
            window.first_ids = sorted([*window.first_ids, *row["first_ids"]])[:MAX_IDS]
    return list(windows.values())


def _late_alerts(conn: Any, run: Run, now: datetime, settings: Settings) -> list[Alert]:
    late = late_windows(conn, now, settings)
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("alerts/open_subjects"), {"kind": LATE})
        already_open = {row["subject"] for row in cursor.fetchall()}
    still_late = {window.subject for window in late}
    newly_late = [window for window in late if window.subject not in already_open]
    found = []
    if newly_late:
        found.append(late_alert(run, newly_late, settings))
        _open(conn, LATE, [window.subject for window in newly_late], run)
    caught_up = sorted(already_open - still_late)
    if caught_up:
        found.append(caught_up_alert(run, _close(conn, LATE, caught_up)))
    return found


def late_alert(run: Run, windows: list[LateWindow], settings: Settings) -> Alert:
    unsent = sum(window.total for window in windows)
    subject = (f"{SOURCE}: {_plural(unsent, 'notification')} of {_plural(len(windows), 'hourly window')} of "
               f"{HOURLY_DAG_ID} not sent {settings.late_alert_minutes} minutes after the window ended")
    lines = [subject + ":"]
    for window in windows:
        counts = "; ".join(f"{occasion} {_join_counts(by_status)}"
                           for occasion, by_status in sorted(window.counts.items()))
        lines.append(f"  [{_utc(window.start)}, {_utc(window.start + timedelta(hours=1))}): {window.total} unsent"
                     f" ({counts}); first ids: {', '.join(map(str, window.first_ids))}")
    lines.append(f"  checked by run {run.run_id} of {run.dag_id}: {run.url}")
    lines.append(f"  hourly runs: {run.dag_url(HOURLY_DAG_ID)}")
    return Alert("sends_late", subject, "\n".join(lines), {
        "dag_id": HOURLY_DAG_ID, "checked_by_dag_id": run.dag_id, "run_id": run.run_id, "run_url": run.url,
        "late_after_minutes": settings.late_alert_minutes, "unsent": unsent,
        "windows": [window.as_details() for window in windows]})


def caught_up_alert(run: Run, closed: list[dict[str, Any]]) -> Alert:
    starts = [datetime.fromisoformat(row["subject"]) for row in closed]
    spans = ", ".join(f"[{_utc(start)}, {_utc(start + timedelta(hours=1))})" for start in starts)
    subject = f"{SOURCE}: {HOURLY_DAG_ID} caught up: no unsent notification left in {spans}"
    text = f"{subject} (sent or expired; checked by run {run.run_id} of {run.dag_id}).\n  run: {run.url}"
    return Alert("sends_caught_up", subject, text, {
        "dag_id": HOURLY_DAG_ID, "checked_by_dag_id": run.dag_id, "run_id": run.run_id, "run_url": run.url,
        "windows": [{"window_start": _utc(start), "window_end": _utc(start + timedelta(hours=1)),
                     "reported_by_run_id": row["run_id"]} for start, row in zip(starts, closed, strict=True)]})


def _endpoint_alerts(conn: Any, run: Run, now: datetime, settings: Settings) -> list[Alert]:
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("endpoints/disabled"))
        disabled = cursor.fetchall()
        cursor.execute(load_sql("alerts/open_subjects"), {"kind": ENDPOINT_DISABLED})
        already_open = {row["subject"] for row in cursor.fetchall()}
        newly_disabled = [row for row in disabled if row["endpoint_sha256"] not in already_open]
        waiting = 0
        if newly_disabled:
            cursor.execute(load_sql("endpoints/waiting"), due_parameters(settings, now, timedelta(0)))
            waiting = cursor.fetchone()["waiting"]
    found = [endpoint_disabled_alert(run, row, waiting) for row in newly_disabled]
    if newly_disabled:
        _open(conn, ENDPOINT_DISABLED, [row["endpoint_sha256"] for row in newly_disabled], run)
    enabled = sorted(already_open - {row["endpoint_sha256"] for row in disabled})
    if enabled:
        found.extend(endpoint_enabled_alert(run, closed) for closed in _close(conn, ENDPOINT_DISABLED, enabled))
    return found


def endpoint_disabled_alert(run: Run, endpoint: dict[str, Any], waiting: int) -> Alert:
    conn_id = endpoint["conn_id"] or "(unknown connection)"
    subject = (f"{SOURCE}: the endpoint of connection {conn_id} answered 410 Gone and is disabled; "
               f"{_plural(waiting, 'notification')} waiting")
    text = "\n".join([
        subject + ":",
        f"  disabled at {_utc(endpoint['disabled_at'])} ({endpoint['disabled_reason']}); nothing is sent to it",
        f"  {_plural(waiting, 'notification')} wait (scheduled or to be retried, not failed); each expires once "
        "its instant is max_lateness_hours old",
        f"  enable it again: trigger {ENDPOINT_DAG} with conn_id {conn_id} (or point the connection at a new URL); "
        "the next sweep sends what waits",
        f"  {run.dag_url(ENDPOINT_DAG)}",
    ])
    return Alert("endpoint_disabled", subject, text, {
        "conn_id": endpoint["conn_id"], "endpoint_sha256": endpoint["endpoint_sha256"],
        "disabled_at": _utc(endpoint["disabled_at"]), "reason": endpoint["disabled_reason"], "waiting": waiting,
        "checked_by_dag_id": run.dag_id, "run_id": run.run_id, "run_url": run.url})


def endpoint_enabled_alert(run: Run, closed: dict[str, Any]) -> Alert:
    subject = f"{SOURCE}: a disabled webhook endpoint was enabled again"
    text = (f"{subject} (reported disabled by run {closed['run_id']} of {closed['dag_id']} at "
            f"{_utc(closed['opened_at'])}); the waiting notifications go out with the sweep.\n  run: {run.url}")
    return Alert("endpoint_enabled", subject, text, {
        "endpoint_sha256": closed["subject"], "checked_by_dag_id": run.dag_id, "run_id": run.run_id,
        "run_url": run.url, "reported_by_run_id": closed["run_id"], "reported_at": _utc(closed["opened_at"])})


def _open(conn: Any, kind: str, subjects: list[str], run: Run) -> None:
    with conn.cursor() as cursor:
        cursor.execute(load_sql("alerts/open"),
                       {"kind": kind, "subjects": subjects, "dag_id": run.dag_id, "run_id": run.run_id})


def _close(conn: Any, kind: str, subjects: list[str]) -> list[dict[str, Any]]:
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("alerts/close"), {"kind": kind, "subjects": subjects})
        return sorted(cursor.fetchall(), key=lambda row: row["subject"])


def _join_counts(by_status: dict[str, int]) -> str:
    return ", ".join(f"{status} {count}" for status, count in sorted(by_status.items()))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
