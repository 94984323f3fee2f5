"""Changing a rule after a year's message was planned or sent never sends a second one for that user, occasion
and year; a changed rule moves the year's notification if it was not sent yet, and it goes out once.

Real runs of ``birthday_notifications`` (``dag.test()``) for hours of March 2026, a real receiver on 127.0.0.1,
real PostgreSQL. The late window is made long enough for those hours still to be sendable.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest

from birthday_pipeline.plan.planning import User, Window, plan_window
from birthday_pipeline.rules.calendar import Feb29Rule, local_instant
from birthday_pipeline.rules.timezones import load_zone
from birthday_pipeline.settings import Settings
from tests.conftest import insert_users, set_settings

FEB_28 = datetime(2026, 2, 28, 9, tzinfo=UTC)  # 2026 has no 29 February
MAR_1 = datetime(2026, 3, 1, 9, tzinfo=UTC)
MAR_10 = datetime(2026, 3, 10, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def hourly(app_database_url):
    from tests.airflow_dagbag import DagBag

    return DagBag().get_dag("birthday_notifications")


@pytest.fixture(autouse=True)
def late_window_back_to_march(monkeypatch) -> None:
    """Instants of March 2026 are still within the late window (and never in the future: nothing waits)."""
    hours_since = (datetime.now(UTC) - FEB_28) // timedelta(hours=1)
    set_settings(monkeypatch, max_lateness_hours=str(hours_since + 48))


def setting(monkeypatch, name: str, value: str) -> None:
    set_settings(monkeypatch, **{name: value})


def run_the_hour_of(hourly, instant: datetime) -> None:
    """The hourly run whose window holds ``instant``: it plans the window, then releases and sends it."""
    run = hourly.test(logical_date=instant.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
    assert run.state == "success"


def deliveries(webhook) -> Counter[str]:
    """2xx answers per webhook-id."""
    return Counter(request.headers["webhook-id"] for request in webhook.requests if request.status == 200)


def notifications(db) -> list[tuple]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, occasion_date, status FROM notifications ORDER BY user_id, occasion_date")
        return cursor.fetchall()


def test_feb29_rule_switched_after_28_february_was_sent(db, webhook, hourly, monkeypatch) -> None:
    insert_users(db, [User(1, date(2000, 2, 29), "UTC", "Leap", "Day")])
    setting(monkeypatch, "feb29_rule", "feb28")
    run_the_hour_of(hourly, FEB_28)
    assert list(deliveries(webhook).values()) == [1]

    setting(monkeypatch, "feb29_rule", "mar1")
    run_the_hour_of(hourly, MAR_1)

    assert list(deliveries(webhook).values()) == [1], "a second message for the same year"
    assert notifications(db) == [(1, date(2026, 2, 28), "sent")]


def test_feb29_rule_switched_before_28_february_was_sent_moves_the_message_to_1_march(
        db, webhook, hourly, monkeypatch) -> None:
    insert_users(db, [User(1, date(2000, 2, 29), "UTC", "Leap", "Day")])
    plan_window(db, Window(FEB_28, FEB_28 + timedelta(hours=1)), Settings(feb29_rule=Feb29Rule.FEB28))
    with db.cursor() as cursor:
        cursor.execute("SELECT webhook_id FROM notifications")
        (webhook_id,) = cursor.fetchone()
    db.commit()

    setting(monkeypatch, "feb29_rule", "mar1")
    run_the_hour_of(hourly, FEB_28)  # its release claims the row, finds it due on 1 March now, re-plans it
    assert webhook.requests == []
    assert notifications(db) == [(1, date(2026, 3, 1), "scheduled")]
    run_the_hour_of(hourly, MAR_1)

    assert deliveries(webhook) == {str(webhook_id): 1}
    assert webhook.requests[0].json["occasion_date"] == "2026-03-01"
    assert notifications(db) == [(1, date(2026, 3, 1), "sent")]


def test_send_local_time_switched_after_the_message_was_sent(db, webhook, hourly, monkeypatch) -> None:
    insert_users(db, [User(1, date(1990, 3, 10), "UTC", "Ada", "Lovelace")])
    run_the_hour_of(hourly, MAR_10)
    assert list(deliveries(webhook).values()) == [1]

    setting(monkeypatch, "send_local_time", "11:00")
    run_the_hour_of(hourly, MAR_10 + timedelta(hours=2))

    assert list(deliveries(webhook).values()) == [1], "a second message for the same year"
    assert notifications(db) == [(1, date(2026, 3, 10), "sent")]


def test_default_timezone_switched_after_the_message_was_sent(db, webhook, hourly, monkeypatch) -> None:
    insert_users(db, [User(1, date(1990, 3, 10), None, "Ada", "Lovelace")])  # no zone: the default one
    run_the_hour_of(hourly, MAR_10)
    assert list(deliveries(webhook).values()) == [1]

    setting(monkeypatch, "default_timezone", "America/New_York")
    run_the_hour_of(hourly, local_instant(MAR_10.date(), time(9), load_zone("America/New_York")))

    assert list(deliveries(webhook).values()) == [1], "a second message for the same year"
    assert notifications(db) == [(1, date(2026, 3, 10), "sent")]


def test_a_birthday_changed_after_the_years_message_was_sent_gets_none_again_that_year(
        db, webhook, hourly) -> None:
    insert_users(db, [User(1, date(1990, 3, 1), "UTC", "Ada", "Lovelace")])
    run_the_hour_of(hourly, MAR_1)
    with db.cursor() as cursor:
        cursor.execute("UPDATE users SET birthday = '1990-03-10' WHERE id = 1")
    db.commit()

    run_the_hour_of(hourly, MAR_10)

    assert list(deliveries(webhook).values()) == [1]
    assert notifications(db) == [(1, date(2026, 3, 1), "sent")]
