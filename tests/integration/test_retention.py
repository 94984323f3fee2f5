"""Retention against real PostgreSQL: what it deletes and keeps, beside a real send batch to a real receiver.

The send batch runs while retention deletes tens of thousands of old rows; every backend of the test database
is sampled meanwhile for a lock it waits on (``pg_locks`` not granted). Nothing may wait, every due user gets
exactly one message, and a sweep afterwards sends nothing again.
"""

from __future__ import annotations

import threading
import time
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg2

from birthday_pipeline.operate.retention import delete_old_history
from birthday_pipeline.plan.planning import ReleaseBatch, Window, upsert_window
from birthday_pipeline.settings import Settings
from tests.conftest import set_settings

OLD_ROWS = 24_000  # notifications celebrated 500 days ago, one attempt each
RACE_BATCH = 100
DUE_USERS = 300
HISTORY = """
INSERT INTO users (id, first_name, last_name, birthday, timezone)
SELECT id, 'Ada', 'Lovelace', %(born)s, 'UTC' FROM generate_series(1, %(old_rows)s) AS id;
INSERT INTO notifications (user_id, occasion_date, send_at, status, attempts, sent_at)
SELECT id, %(old_day)s, %(old_instant)s, 'sent', 1, %(old_instant)s FROM users ORDER BY id;
INSERT INTO notification_attempts (notification_id, attempt_number, claim_token, started_at, finished_at,
    http_status, latency_ms)
SELECT id, 1, gen_random_uuid(), send_at, send_at, 200, 100 FROM notifications ORDER BY id;
"""


def insert_notification(db: Any, user_id: int, occasion: str, day: date, status: str,
                        send_at: datetime | None, attempt_at: datetime | None = None,
                        retry_after: datetime | None = None) -> int:
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notifications (user_id, occasion, occasion_date, send_at, status, attempts, last_error,"
            " retry_after) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (user_id, occasion, day, send_at, status, int(attempt_at is not None),
             "unknown time zone" if status == "invalid" else None, retry_after),
        )
        (notification_id,) = cursor.fetchone()
        if attempt_at is not None:
            cursor.execute(
                "INSERT INTO notification_attempts (notification_id, attempt_number, claim_token, started_at,"
                " finished_at, http_status, latency_ms) VALUES (%s, 1, gen_random_uuid(), %s, %s, 200, 100)",
                (notification_id, attempt_at, attempt_at),
            )
    db.commit()
    return notification_id


def surviving(db: Any, ids: list[int]) -> list[int]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT id FROM notifications WHERE id = ANY (%s) ORDER BY id", (ids,))
        found = [row[0] for row in cursor.fetchall()]
    db.rollback()
    return found


def count(db: Any, query: str, parameters: tuple = ()) -> int:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute(query, parameters)
        (found,) = cursor.fetchone()
    db.rollback()
    return found


class LockWaits(threading.Thread):
    """Samples every backend of the database for a lock it waits on, as fast as it can, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples = 0
        self.waits: list[tuple] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                while not self.stopping.is_set():
                    cursor.execute(
                        "SELECT a.pid, l.locktype, l.mode, left(a.query, 120) FROM pg_locks AS l"
                        " JOIN pg_stat_activity AS a ON a.pid = l.pid"
                        " WHERE NOT l.granted AND a.datname = current_database()"
                    )
                    self.waits.extend(cursor.fetchall())
                    self.samples += 1
        finally:
            conn.close()


def test_retention_beside_a_send_batch_deletes_only_old_history_and_delays_nothing(
        db, app_database_url, webhook, monkeypatch) -> None:
    from birthday_pipeline.edge import retention as retention_dag
    from birthday_pipeline.edge import sending, sweep
    from birthday_pipeline.edge.connections import open_database
    from birthday_pipeline.edge.variables import read_settings

    now = datetime.now(UTC)
    instant = (now - timedelta(seconds=2)).replace(microsecond=0)
    settings = {"send_local_time": instant.strftime("%H:%M:%S"), "max_in_flight": 20, "batch_size": DUE_USERS}
    set_settings(monkeypatch, **settings)
    old_day = (now - timedelta(days=500)).date()
    # Born half a year from now: no sweep of today plans these users again.
    far = (now + timedelta(days=180)).date()
    with db.cursor() as cursor:
        cursor.execute(HISTORY, {"old_rows": OLD_ROWS, "old_day": old_day,
                                 "born": date(1990, far.month, min(far.day, 28)),
                                 "old_instant": datetime.combine(old_day, instant.time(), UTC)})
    db.commit()
    # The kept and the deleted, beside the bulk of old sent rows (users 1..4 have one of each besides).
    days_ago = {days: (now - timedelta(days=days)) for days in (600, 450, 380, 200, 10)}
    kept = [
        insert_notification(db, 1, "work_anniversary", days_ago[600].date(), "scheduled", days_ago[600]),
        # Failed retryably: the sweep may still try it, or expire it.
        insert_notification(db, 2, "work_anniversary", days_ago[450].date(), "failed", days_ago[450], days_ago[450],
                            retry_after=days_ago[450]),
        insert_notification(db, 3, "work_anniversary", days_ago[380].date(), "sent", days_ago[380], days_ago[380]),
        insert_notification(db, 4, "work_anniversary", days_ago[200].date(), "sent", days_ago[200], days_ago[200]),
        insert_notification(db, 5, "work_anniversary", days_ago[10].date(), "sent", days_ago[10], days_ago[10]),
    ]
    deleted = [
        insert_notification(db, 6, "work_anniversary", days_ago[450].date(), "expired", days_ago[450], days_ago[450]),
        insert_notification(db, 7, "work_anniversary", days_ago[450].date(), "invalid", None),
        insert_notification(db, 8, "work_anniversary", days_ago[450].date(), "cancelled", days_ago[450]),
        # Failed for good (refused by the endpoint: no retry_after): as finished as a sent one.
        insert_notification(db, 9, "work_anniversary", days_ago[450].date(), "failed", days_ago[450]),
    ]
    # Users due now, as the hourly DAG's plan leaves them: one release batch.
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO users (id, first_name, last_name, birthday, timezone)"
            " SELECT id, 'Grace', 'Hopper', %(born)s, 'UTC' FROM generate_series(%(first)s, %(last)s) AS id;"
            " INSERT INTO notifications (user_id, occasion_date, send_at)"
            " SELECT id, %(today)s, %(instant)s FROM users WHERE id >= %(first)s ORDER BY id"
            " RETURNING id",
            {"born": instant.date().replace(year=1990), "first": OLD_ROWS + 1, "last": OLD_ROWS + DUE_USERS,
             "today": instant.date(), "instant": instant},
        )
        due_ids = [row[0] for row in cursor.fetchall()]
    db.commit()
    batch = ReleaseBatch(instant, min(due_ids), max(due_ids), len(due_ids)).to_json()
    read_settings()  # Airflow's hooks and Variables loaded before the race starts

    sampler = LockWaits(app_database_url)
    outcome: dict[str, Any] = {}

    def run_retention() -> None:
        # Batches of 100 (not the DAG's 1,000) make it outlast the send by far, on any machine.
        with closing(open_database("birthday_db")) as conn:
            outcome["started"] = time.monotonic()
            outcome["result"] = delete_old_history(conn, now, read_settings(), batch_size=RACE_BATCH)
            outcome["finished"] = time.monotonic()

    retention = threading.Thread(target=run_retention)
    sampler.start()
    retention.start()
    while count(db, "SELECT count(*) FROM notification_attempts") == OLD_ROWS + 5:
        time.sleep(0.005)  # the first batch is in
    send_started = time.monotonic()
    sent = sending.send_batch(batch, "birthday_db", "birthday_webhook", from_sweep=False)
    send_finished = time.monotonic()
    retention.join(timeout=120)
    sampler.stopping.set()
    sampler.join(timeout=10)

    # The two ran at the same time: retention started before the send and ended after it.
    assert outcome["started"] < send_started and outcome["finished"] > send_finished, (
        f"retention ran {outcome['finished'] - outcome['started']:.2f} s, "
        f"the send {send_finished - send_started:.2f} s")
    assert sampler.samples > 100 and sampler.waits == []
    assert sent == {"claimed": DUE_USERS, "sent": DUE_USERS, "failed": 0, "skipped": 0, "waiting": 0}
    result = outcome["result"]
    assert (result.attempts_deleted, result.notifications_deleted) == (OLD_ROWS + 4, OLD_ROWS + 4)
    assert result.batches == 2 * (OLD_ROWS // RACE_BATCH + 1)
    assert surviving(db, kept + deleted) == kept
    assert count(db, "SELECT count(*) FROM notifications WHERE occasion_date = %s", (old_day,)) == 0
    # Attempts older than 90 days are gone, the notifications they belong to stay.
    assert count(db, "SELECT count(*) FROM notification_attempts WHERE notification_id = ANY (%s)", (kept,)) == 1

    # Idempotent: a second run finds nothing more to delete.
    assert retention_dag.delete_old_history("birthday_db", now) == {"attempts_deleted": 0, "notifications_deleted": 0,
                                                      "batches": 2}

    # A sweep afterwards plans and sends nothing again; every due user got exactly one message.
    for again in sweep.find_due("birthday_db", datetime.now(UTC)):
        sending.send_batch(again, "birthday_db", "birthday_webhook", from_sweep=True)
    assert sorted(request.json["user_id"] for request in webhook.requests) == list(
        range(OLD_ROWS + 1, OLD_ROWS + DUE_USERS + 1))
    sent_query = "SELECT count(*) FROM notifications WHERE status = 'sent' AND id = ANY (%s)"
    assert count(db, sent_query, (due_ids,)) == DUE_USERS
    # The sweep expired the two old unfinished rows; the next retention run deletes them.
    assert retention_dag.delete_old_history("birthday_db", now)["notifications_deleted"] == 2
    assert surviving(db, kept) == kept[2:]


def test_a_row_inside_the_late_window_is_kept_however_old(db) -> None:
    """With a late window longer than the retention, an old sent row the sweep would plan again stays."""
    now = datetime.now(UTC).replace(microsecond=0)
    settings = Settings(max_lateness_hours=450 * 24, retention_days=400)
    rows = {}
    for user_id, days in ((1, 420), (2, 460)):
        instant = datetime.combine((now - timedelta(days=days)).date(), settings.send_local_time, UTC)
        with db.cursor() as cursor:
            cursor.execute("INSERT INTO users (id, first_name, last_name, birthday, timezone)"
                           " VALUES (%s, 'Ada', 'Lovelace', %s, 'UTC')", (user_id, instant.date().replace(year=1990)))
        db.commit()
        rows[days] = (insert_notification(db, user_id, "birthday", instant.date(), "sent", instant, instant), instant)

    result = delete_old_history(db, now, settings, batch_size=1)

    assert (result.notifications_deleted, result.attempts_deleted) == (1, 2)
    assert surviving(db, [rows[420][0], rows[460][0]]) == [rows[420][0]]
    # Planning the hour of the kept row again (a backfill, or a sweep with this late window) changes nothing.
    kept_instant = rows[420][1]
    assert upsert_window(db, Window(kept_instant, kept_instant + timedelta(hours=1)), settings).count == 0
    db.commit()
    assert count(db, "SELECT count(*) FROM notifications WHERE user_id = 1") == 1


def test_the_retention_dag_runs_under_dag_test(db) -> None:
    from tests.airflow_dagbag import DagBag

    now = datetime.now(UTC)
    old = now - timedelta(days=401)
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO users (id, first_name, last_name, birthday, timezone)"
                       " VALUES (1, 'Ada', 'Lovelace', '1990-01-01', 'UTC'),"
                       " (2, 'Ada', 'Lovelace', '1990-01-01', 'UTC')")
    db.commit()
    gone = insert_notification(db, 1, "birthday", old.date(), "sent", old, old)
    hundred_days_ago = now - timedelta(days=100)
    stays = insert_notification(db, 2, "birthday", hundred_days_ago.date(), "sent", hundred_days_ago, hundred_days_ago)

    dag_run = DagBag().get_dag("birthday_retention").test(logical_date=now)

    assert dag_run.state == "success"
    assert surviving(db, [gone, stays]) == [stays]
    assert count(db, "SELECT count(*) FROM notification_attempts") == 0
