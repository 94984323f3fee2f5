"""Delivery end to end under ``dag.test()``: real PostgreSQL, a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from psycopg2 import sql

from tests.conftest import WEBHOOK_SECRET as SECRET, set_settings
from birthday_pipeline.deliver.webhooks import verify


def now() -> datetime:
    return datetime.now(UTC)


def whole_hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


def _offset_due_at(instant: datetime) -> int:
    """The UTC offset, in hours (-10 to +14), whose 09:00 local is ``instant`` (a whole hour)."""
    offset = (9 - instant.hour) % 24
    return offset - 24 if offset > 14 else offset


def celebrated_at(instant: datetime) -> date:
    """The local date whose 09:00 is ``instant`` in the zone ``born_due_at`` picks."""
    return (instant + timedelta(hours=_offset_due_at(instant))).date()


def born_due_at(instant: datetime, years_ago: int = 30) -> tuple[date, str]:
    """A birthday and an Etc zone whose 09:00 local is ``instant`` (a whole hour)."""
    offset = _offset_due_at(instant)
    zone = "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    local_day = celebrated_at(instant)
    return local_day.replace(year=local_day.year - years_ago), zone


def add_users(db, users: list[tuple[int, str, str, date, str | None]]) -> None:
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO users (id, first_name, last_name, birthday, timezone) VALUES (%s, %s, %s, %s, %s)", users
        )
    db.commit()


def rows(db, columns: str = "user_id, status, attempts") -> list[tuple]:
    db.rollback()
    with db.cursor() as cursor:
        selected = sql.SQL(", ").join(sql.Identifier(column) for column in columns.split(", "))
        cursor.execute(sql.SQL("SELECT {} FROM notifications ORDER BY user_id").format(selected))
        return cursor.fetchall()


def attempts_of(db, user_id: int) -> list[tuple]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT a.attempt_number, a.http_status, a.error, a.started_at FROM notification_attempts a"
            " JOIN notifications n ON n.id = a.notification_id WHERE n.user_id = %s ORDER BY a.id",
            (user_id,),
        )
        return cursor.fetchall()


@pytest.fixture(scope="module")
def dags(app_database_url):
    from tests.airflow_dagbag import DagBag

    bag = DagBag()
    return bag.get_dag("birthday_notifications"), bag.get_dag("birthday_sweep")


def send_local_time(monkeypatch, instant: datetime) -> None:
    """Make UTC users' send time the time of day of ``instant``."""
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))


def hourly_run_for(dag, instant: datetime):
    """Run the hourly DAG whose window holds ``instant``."""
    return dag.test(logical_date=whole_hour(instant) - timedelta(hours=1))


@pytest.mark.core
def test_a_released_batch_posts_each_message_once_at_its_instant(db, webhook, dags, monkeypatch) -> None:
    hourly, _ = dags
    instant = (now() + timedelta(seconds=12)).replace(microsecond=0)
    send_local_time(monkeypatch, instant)
    set_settings(monkeypatch, release_lead_seconds="5")
    set_settings(monkeypatch, batch_size="3")
    born = instant.date().replace(year=1990)
    due = [
        (1, "Ada", "Lovelace", born, "UTC"),
        (2, "Zoë", "O'Brien", born, "Europe/London" if instant.month in (11, 12, 1, 2) else "UTC"),
        (3, "محمد", "عبدالله", born, "Africa/Abidjan"),
        (4, "Grace", 'Hopper "Amazing"', born.replace(year=2000), None),
        (5, "Li", "Wei 🎂", born, "Atlantic/Reykjavik"),
    ]
    add_users(db, [*due, (6, "Not", "Today", born + timedelta(days=2), "UTC")])

    dag_run = hourly_run_for(hourly, instant)

    assert dag_run.state == "success"
    received = webhook.requests
    assert sorted(request.json["user_id"] for request in received) == [1, 2, 3, 4, 5]
    for request in received:
        user = next(user for user in due if user[0] == request.json["user_id"])
        assert request.json == {
            "message": f"Hey, {user[1]} {user[2]} it's your birthday",
            "notification_id": request.json["notification_id"],
            "user_id": user[0],
            "occasion": "birthday",
            "occasion_date": instant.date().isoformat(),
        }
        headers = request.headers
        assert headers["content-type"] == "application/json"
        assert headers["idempotency-key"] == headers["webhook-id"]
        assert verify(SECRET, headers["webhook-id"], headers["webhook-timestamp"], request.body,
                                headers["webhook-signature"])
        assert request.received_at >= instant.timestamp()
    print(f"first request {min(r.received_at for r in received) - instant.timestamp():.3f} s after the instant")
    assert rows(db) == [(user_id, "sent", 1) for user_id in (1, 2, 3, 4, 5)]
    assert [attempt[:3] for attempt in attempts_of(db, 3)] == [(1, 200, None)]

    # Clearing and running the same hour again finds everything sent and posts nothing.
    assert hourly_run_for(hourly, instant).state == "success"
    assert len(webhook.requests) == 5


def test_two_failures_then_success_is_delivered_on_the_third_try(db, webhook, dags, monkeypatch) -> None:
    hourly, _ = dags
    instant = (now() - timedelta(seconds=30)).replace(microsecond=0)
    send_local_time(monkeypatch, instant)
    add_users(db, [(1, "Ada", "Lovelace", instant.date().replace(year=1990), "UTC")])
    webhook.respond_with(500, 500)

    assert hourly_run_for(hourly, instant).state == "success"

    assert rows(db, "user_id, status, attempts, last_error") == [(1, "sent", 3, None)]
    attempts = attempts_of(db, 1)
    assert [attempt[:3] for attempt in attempts] == [(1, 500, "HTTP 500"), (2, 500, "HTTP 500"), (3, 200, None)]
    gaps = [(later[3] - earlier[3]).total_seconds() for earlier, later in itertools.pairwise(attempts)]
    assert min(gaps) >= 5, gaps
    assert len({request.headers["webhook-id"] for request in webhook.requests}) == 1


def test_a_failing_webhook_fails_the_rows_and_the_sweep_stops_at_the_attempt_cap(
    db, webhook, dags, monkeypatch
) -> None:
    hourly, sweep = dags
    instant = whole_hour(now())
    birthday, zone = born_due_at(instant)
    add_users(db, [(1, "Ada", "Lovelace", birthday, zone)])
    webhook.always(500)

    assert hourly_run_for(hourly, instant).state == "failed"
    assert rows(db, "status, attempts, last_error") == [("failed", 4, "HTTP 500")]  # one try and 3 retries

    set_settings(monkeypatch, max_attempts="6")
    assert sweep.test(logical_date=now()).state == "success"
    assert rows(db, "status, attempts, last_error") == [("failed", 6, "HTTP 500")]
    assert sweep.test(logical_date=now()).state == "success"
    assert len(webhook.requests) == 6 == len(attempts_of(db, 1))


def test_a_4xx_answer_is_not_retried(db, webhook, dags, monkeypatch) -> None:
    hourly, sweep = dags
    instant = whole_hour(now())
    birthday, zone = born_due_at(instant)
    add_users(db, [(1, "Ada", "Lovelace", birthday, zone)])
    webhook.always(400)

    assert hourly_run_for(hourly, instant).state == "failed"
    assert sweep.test(logical_date=now()).state == "success"

    assert rows(db, "status, attempts, last_error, retry_after") == [("failed", 1, "HTTP 400", None)]
    assert len(webhook.requests) == 1


@pytest.mark.core
def test_after_an_outage_the_sweep_delivers_the_late_window_once_and_expires_older_rows(db, webhook, dags) -> None:
    _, sweep = dags
    current = whole_hour(now())
    three_hours_ago, five_hours_ago, fifty_hours_ago = (current - timedelta(hours=h) for h in (3, 5, 50))
    users = [
        (1, "Planned", "Late", *born_due_at(three_hours_ago)),
        (2, "Never", "Planned", *born_due_at(five_hours_ago)),
        (3, "Too", "Old", *born_due_at(fifty_hours_ago)),
        (4, "Not", "Yet", *born_due_at(current + timedelta(hours=2))),
    ]
    add_users(db, users)
    with db.cursor() as cursor:  # rows an hourly run planned before everything stopped
        cursor.executemany(
            "INSERT INTO notifications (user_id, occasion_date, send_at) VALUES (%s, %s, %s)",
            [(1, celebrated_at(three_hours_ago), three_hours_ago),
             (3, celebrated_at(fifty_hours_ago), fifty_hours_ago)],
        )
    db.commit()
    assert rows(db, "user_id, send_at") == [(1, three_hours_ago), (3, fifty_hours_ago)], "test set-up"

    assert sweep.test(logical_date=now()).state == "success"
    assert sweep.test(logical_date=now()).state == "success"

    assert sorted(request.json["user_id"] for request in webhook.requests) == [1, 2]
    assert rows(db, "user_id, status, attempts, last_error") == [
        (1, "sent", 1, None),
        (2, "sent", 1, None),
        (3, "expired", 0, "not sent within 48 hours of its instant"),
    ]


def test_a_user_deleted_or_changed_after_planning_is_not_sent_at_the_old_instant(db, webhook, app_database_url) -> None:
    instant = (now() - timedelta(seconds=30)).replace(microsecond=0)
    born = instant.date().replace(year=1990)
    add_users(db, [(user_id, "F", "L", born, "UTC") for user_id in (1, 2, 3, 4)])
    from birthday_pipeline.plan.planning import Window, plan_window
    from birthday_pipeline.settings import Settings

    settings = Settings(send_local_time=instant.time())
    plan_window(db, Window(whole_hour(instant), whole_hour(instant) + timedelta(hours=1)), settings)
    with db.cursor() as cursor:
        cursor.execute("DELETE FROM users WHERE id = 1")
        cursor.execute("UPDATE users SET timezone = 'Asia/Tokyo' WHERE id = 2")
        cursor.execute("UPDATE users SET birthday = birthday + 1 WHERE id = 3")
    db.commit()
    # Only the send half of the hourly run: its plan would re-plan the changed users itself.
    from birthday_pipeline.deliver.delivery import deliver_batch
    from birthday_pipeline.plan.planning import ReleaseBatch

    with db.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM notifications")
        first_id, last_id = cursor.fetchone()
    summary = deliver_batch(db, ReleaseBatch(instant, first_id, last_id, 3), sender_for(webhook, app_database_url,
                                                                                        settings))

    assert (summary.claimed, summary.sent, summary.skipped) == (3, 1, 2)
    assert [request.json["user_id"] for request in webhook.requests] == [4]
    assert rows(db, "user_id, status, occasion_date, send_at") == [
        (1, "scheduled", instant.date(), instant),  # no users row: not claimed, not sent; nothing ties it to users
        (2, "scheduled", instant.date(), instant - timedelta(hours=9)),  # re-planned to Tokyo time, not sent now
        # Re-planned to the new birthday: the year's one notification, sent then (under its webhook-id).
        (3, "scheduled", instant.date() + timedelta(days=1), instant + timedelta(days=1)),
        (4, "sent", instant.date(), instant),
    ]
    # Once the row is due for the sweep, the sweep cancels it rather than leave it to expire.
    from birthday_pipeline.plan.sweep import sweep_late_window

    swept = sweep_late_window(db, instant + timedelta(seconds=settings.sweep_grace_seconds + 1), settings)
    assert swept.orphans_cancelled == 1
    assert rows(db, "user_id, status, last_error")[0] == (1, "cancelled", "user no longer exists")


def aiohttp_client(url: str):
    """A plain aiohttp client for calls to ``deliver_batch`` made outside Airflow."""
    from contextlib import asynccontextmanager

    import aiohttp

    from birthday_pipeline.deliver.fanout import Reply

    @asynccontextmanager
    async def open_client():
        async with aiohttp.ClientSession() as session:

            async def post(body: bytes, headers: dict[str, str]) -> Reply:
                async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                    await response.read()
                    return Reply(response.status, response.headers.get("Retry-After"))

            yield post

    return open_client


def sender_for(webhook, database_url: str, settings, connect=None):
    """What ``deliver_batch`` sends with outside Airflow: psycopg2 connections and a plain aiohttp client."""
    import psycopg2

    from birthday_pipeline.deliver.delivery import Sender

    return Sender(connect=connect or (lambda: psycopg2.connect(database_url)), open_client=aiohttp_client(webhook.url),
                  settings=settings, endpoint=webhook.url)


def test_a_batch_woken_early_still_waits_for_its_instant(db, webhook, app_database_url) -> None:
    from birthday_pipeline.deliver.delivery import deliver_batch
    from birthday_pipeline.plan.planning import ReleaseBatch
    from birthday_pipeline.settings import Settings

    instant = (now() + timedelta(seconds=2)).replace(microsecond=0)
    add_users(db, [(1, "F", "L", instant.date().replace(year=1990), "UTC")])
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO notifications (user_id, occasion_date, send_at) VALUES (1, %s, %s) RETURNING id",
                       (instant.date(), instant))
        (notification_id,) = cursor.fetchone()
    db.commit()

    deliver_batch(db, ReleaseBatch(instant, notification_id, notification_id, 1),
                  sender_for(webhook, app_database_url, Settings(send_local_time=instant.time())))

    assert len(webhook.requests) == 1
    assert webhook.requests[0].received_at >= instant.timestamp()




def test_the_hourly_send_and_the_sweep_on_the_same_rows_post_each_once(db, webhook, app_database_url) -> None:
    instant = (now() - timedelta(seconds=1)).replace(microsecond=0)  # due, so every sender races at once
    born = instant.date().replace(year=1990)
    add_users(db, [(user_id, "F", "L", born, "UTC") for user_id in range(1, 2001)])
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notifications (user_id, occasion_date, send_at) SELECT id, %s, %s FROM users", (born.replace(
                year=instant.year), instant)
        )
        cursor.execute("SELECT min(id), max(id) FROM notifications")
        first_id, last_id = cursor.fetchone()
    db.commit()
    start_at = str(time.time() + 8)

    settings = json.dumps({"send_local_time": instant.strftime("%H:%M:%S")})
    senders = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_sender", app_database_url, webhook.url, str(first_id),
             str(last_id), mode, start_at, settings],
            stdout=subprocess.PIPE, text=True,
        )
        for mode in (instant.isoformat(), "sweep", instant.isoformat())
    ]
    claimed = [int(sender.communicate(timeout=120)[0].split()[-1]) for sender in senders]

    webhook_ids = [request.headers["webhook-id"] for request in webhook.requests]
    assert len(webhook_ids) == len(set(webhook_ids)) == 2000
    assert sum(claimed) == 2000
    assert sorted(claimed)[-2] > 0, f"the senders did not overlap: {claimed}"
    assert {status for _, status, _ in rows(db)} == {"sent"}


# Tests connect with psycopg2; the tasks get psycopg (3) connections from PostgresHook. Both must recover.
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_a_database_connection_lost_mid_send_is_recorded_after_reconnecting(db, webhook, app_database_url, caplog,
                                                                            driver: str) -> None:
    """The recorder's connection dies in the middle of a flush; the flush is done again, once, on a new one."""
    import importlib
    import logging
    import threading

    connect = importlib.import_module(driver).connect
    from birthday_pipeline.deliver.delivery import deliver_batch
    from birthday_pipeline.plan.planning import ReleaseBatch
    from birthday_pipeline.settings import Settings

    instant = (now() - timedelta(seconds=1)).replace(microsecond=0)
    add_users(db, [(user_id, "F", "L", instant.date().replace(year=1990), "UTC") for user_id in range(1, 51)])
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO notifications (user_id, occasion_date, send_at) SELECT id, %s, %s FROM users",
                       (instant.date(), instant))
        cursor.execute("SELECT min(id), max(id) FROM notifications")
        first_id, last_id = cursor.fetchone()
    db.commit()
    webhook.delay_seconds = 1  # the answers come in while the table is locked below

    killed: list[int] = []

    def kill_the_flush_midway() -> None:
        """Hold the attempts table, so the first flush waits on it; once it waits (seconds later on a loaded
        machine), kill every connection waiting."""
        with connect(app_database_url) as holder, holder.cursor() as cursor:
            cursor.execute("LOCK TABLE notification_attempts IN EXCLUSIVE MODE")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                # A transaction sees pg_stat_activity as it was when it first read it, unless told to look again.
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute("SELECT count(*) FROM pg_stat_activity"
                               " WHERE datname = current_database() AND wait_event_type = 'Lock'")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND wait_event_type = 'Lock'")
            killed.append(cursor.fetchone()[0])

    holder = threading.Thread(target=kill_the_flush_midway)
    holder.start()
    time.sleep(0.3)  # the lock is held before the first answer comes
    with caplog.at_level(logging.INFO, logger="birthday_pipeline"):
        summary = deliver_batch(connect(app_database_url), ReleaseBatch(instant, first_id, last_id, 50),
                                sender_for(webhook, app_database_url, Settings(send_local_time=instant.time()),
                                           connect=lambda: connect(app_database_url)))
    holder.join()

    assert killed == [1], "the recorder's flush was not caught waiting"
    assert (summary.claimed, summary.sent) == (50, 50)
    assert {(status, attempts) for _, status, attempts in rows(db)} == {("sent", 1)}
    assert len(webhook.requests) == 50
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT notification_id) FROM notification_attempts")
        assert cursor.fetchone() == (50, 50)
    assert any("after reconnecting to the database" in record.getMessage() for record in caplog.records)


def test_a_batch_whose_lease_runs_out_stops_sending_and_records_what_it_sent(db, webhook, app_database_url) -> None:
    """A lease that ran out (a database unreachable too long, a frozen process, here: moved back by hand) may be
    another task's already: the batch stops starting requests, records what it had, and fails; the rest is
    free to claim at once, and each message is still delivered once."""
    import threading

    import psycopg2

    from birthday_pipeline.deliver.delivery import deliver_batch
    from birthday_pipeline.deliver.lease import LeaseLostError
    from birthday_pipeline.plan.planning import ReleaseBatch
    from birthday_pipeline.settings import Settings

    instant = (now() - timedelta(seconds=1)).replace(microsecond=0)
    add_users(db, [(user_id, "F", "L", instant.date().replace(year=1990), "UTC") for user_id in range(1, 201)])
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO notifications (user_id, occasion_date, send_at) SELECT id, %s, %s FROM users",
                       (instant.date(), instant))
    db.commit()
    settings = Settings(send_local_time=instant.time(), max_requests_per_second=50, lease_seconds=3)

    def run_the_lease_out() -> None:
        time.sleep(1.5)
        with psycopg2.connect(app_database_url) as conn, conn.cursor() as cursor:
            cursor.execute("UPDATE claim_leases SET expires_at = now() - interval '1 second'")

    threading.Thread(target=run_the_lease_out).start()
    with pytest.raises(LeaseLostError, match="its lease had run out"):
        deliver_batch(psycopg2.connect(app_database_url), ReleaseBatch(instant, 1, 200, 200),
                      sender_for(webhook, app_database_url, settings))

    sent_before = len(webhook.requests)
    assert 0 < sent_before < 200, "the batch did not stop when its lease ran out"
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notification_attempts")
        assert cursor.fetchone() == (sent_before,)
    assert sorted({status for _, status, _ in rows(db)}) == ["sending", "sent"]

    unpaced = settings.model_copy(update={"max_requests_per_second": 0})
    # The sweep's re-drive takes the rest at once.
    summary = deliver_batch(db, ReleaseBatch(None, 1, 200, 200), sender_for(webhook, app_database_url, unpaced))

    assert summary.sent == 200 - sent_before
    webhook_ids = [request.headers["webhook-id"] for request in webhook.requests]
    assert len(webhook_ids) == len(set(webhook_ids)) == 200
