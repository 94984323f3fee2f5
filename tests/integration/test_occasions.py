"""Occasions from the registry: birthdays and work anniversaries through the same planning, release and sweep.

Real PostgreSQL, a real receiver, the hourly and sweep DAGs under ``dag.test()``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from birthday_pipeline.plan.planning import User, Window, plan_user
from birthday_pipeline.rules.occasions import WORK_ANNIVERSARY
from birthday_pipeline.settings import Settings
from tests.conftest import insert_users, set_settings


@pytest.fixture(scope="module")
def dags(app_database_url):
    from tests.airflow_dagbag import DagBag

    bag = DagBag()
    return bag.get_dag("birthday_notifications"), bag.get_dag("birthday_sweep")


def hourly_run_for(dag, instant: datetime):
    return dag.test(logical_date=instant.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))


def notifications(db) -> list[tuple]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, occasion, status, last_error FROM notifications ORDER BY user_id, occasion")
        return cursor.fetchall()


def test_every_occasion_reads_a_users_column_the_migrations_created(db) -> None:
    with db.cursor() as cursor:
        cursor.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'users'")
        columns = dict(cursor.fetchall())
    occasions = Settings().occasion_registry
    assert {column: columns.get(column) for column in occasions.date_columns} == {
        column: "date" for column in occasions.date_columns}
    assert list(occasions) == ["birthday", "work_anniversary"]
    with pytest.raises(ValueError, match="known: birthday, work_anniversary"):
        occasions.named("name_day")


def test_the_reference_plans_both_occasions_of_a_user_on_the_same_day() -> None:
    instant = datetime(2026, 3, 10, 9, tzinfo=UTC)
    user = User(1, date(1990, 3, 10), "UTC", other_dates={"hired_on": date(2016, 3, 10)})
    planned = plan_user(user, Window(instant, instant + timedelta(hours=1)), Settings())
    assert sorted((row.occasion, row.occasion_date, row.send_at, row.status) for row in planned) == [
        ("birthday", date(2026, 3, 10), instant, "scheduled"),
        ("work_anniversary", date(2026, 3, 10), instant, "scheduled"),
    ]


def test_a_user_with_both_on_the_same_day_gets_two_messages_with_two_webhook_ids(db, webhook, dags,
                                                                                   monkeypatch) -> None:
    hourly, _ = dags
    instant = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    today = instant.date()
    insert_users(db, [
        User(1, today.replace(year=1990), "UTC", "Ada", "Lovelace", {"hired_on": today.replace(year=2015)}),
        User(2, today.replace(year=1985), "UTC", "Grace", "Hopper"),
        User(3, date(1980, 1, 1) if today != date(today.year, 1, 1) else date(1980, 1, 2), "UTC", "Alan", "Turing",
             {"hired_on": today.replace(year=2020)}),
        User(4, date(1980, 1, 1) if today != date(today.year, 1, 1) else date(1980, 1, 2), "UTC", "Li", "Wei",
             {"hired_on": today}),
    ])

    assert hourly_run_for(hourly, instant).state == "success"

    received = sorted(webhook.requests, key=lambda request: (request.json["user_id"], request.json["occasion"]))
    assert [(request.json["user_id"], request.json["occasion"], request.json["message"]) for request in received] == [
        (1, "birthday", "Hey, Ada Lovelace it's your birthday"),
        (1, "work_anniversary", "Hey, Ada Lovelace happy work anniversary"),
        (2, "birthday", "Hey, Grace Hopper it's your birthday"),
        (3, "work_anniversary", "Hey, Alan Turing happy work anniversary"),
    ]
    webhook_ids = [request.headers["webhook-id"] for request in received]
    assert len(set(webhook_ids)) == 4
    assert all(request.received_at >= instant.timestamp() for request in received)
    assert notifications(db) == [
        (1, "birthday", "sent", None),
        (1, "work_anniversary", "sent", None),
        (2, "birthday", "sent", None),
        (3, "work_anniversary", "sent", None),
        (4, "work_anniversary", "invalid", "hired_on is not in the past"),
    ]


def test_the_sweep_sends_an_overdue_work_anniversary_the_hourly_run_never_planned(db, webhook, dags,
                                                                                   monkeypatch) -> None:
    _, sweep = dags
    instant = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    hired_on = instant.date().replace(year=2019)
    insert_users(db, [User(7, date(1980, 6, 1) if hired_on.month != 6 else date(1980, 7, 1), "UTC", "Mei", "Tanaka",
                           {"hired_on": hired_on})])

    assert sweep.test().state == "success"

    assert [(request.json["user_id"], request.json["occasion"]) for request in webhook.requests] == [
        (7, WORK_ANNIVERSARY.name)]
    assert notifications(db) == [(7, "work_anniversary", "sent", None)]
