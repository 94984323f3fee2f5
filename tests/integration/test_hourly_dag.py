"""The hourly DAG under ``dag.test()`` against real PostgreSQL: every hour of two days, then again every
hour that planned something.

The two days lie in the past, beyond the late window, so the runs plan and release at once and the
release finds nothing it may still send: this test is about planning.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from birthday_pipeline.plan.planning import User, Window, plan_user
from birthday_pipeline.settings import Settings
from tests.conftest import insert_users

FIRST_RUN = datetime(2025, 12, 14, tzinfo=UTC)
LOGICAL_DATES = [FIRST_RUN + timedelta(hours=hour) for hour in range(48)]
# The runs above own the send instants in [first + 1 h, last + 2 h).
COVERED = Window(FIRST_RUN + timedelta(hours=1), LOGICAL_DATES[-1] + timedelta(hours=2))

ZONES = [
    "Pacific/Kiritimati", "Etc/GMT+12", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Eucla", "Pacific/Chatham",
    "Australia/Lord_Howe", "Australia/Melbourne", "America/New_York", "America/Asuncion", "Europe/London",
    "America/St_Johns", "Pacific/Honolulu", "Asia/Tokyo", "US/Eastern", None, "PST",
]


def users_around_the_two_days() -> list[User]:
    users, user_id = [], 0
    for zone in ZONES:
        for birthday in (date(1985, 12, 13), date(1990, 12, 14), date(2001, 12, 15), date(1977, 12, 16),
                         date(1969, 12, 17), date(1999, 6, 15)):
            user_id += 1
            users.append(User(user_id, birthday, zone))
    return users


@pytest.fixture(scope="module")
def hourly_dag(app_database_url):
    from tests.airflow_dagbag import DagBag

    return DagBag().get_dag("birthday_notifications")


def run_hours(dag, logical_dates: list[datetime]) -> None:
    for logical_date in logical_dates:
        dag_run = dag.test(logical_date=logical_date)
        assert dag_run.state == "success", f"run for {logical_date} ended {dag_run.state}"


def test_every_user_due_in_the_two_days_gets_exactly_one_row_at_the_exact_instant(db, webhook, hourly_dag) -> None:
    users = users_around_the_two_days()
    insert_users(db, users)

    run_hours(hourly_dag, LOGICAL_DATES)

    with db.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, occasion, occasion_date, send_at, status, last_error, updated_at FROM notifications"
        )
        first_pass = sorted(cursor.fetchall())
    expected = sorted(
        (row.user_id, "birthday", row.occasion_date, row.send_at, row.status, row.reason)
        for user in users
        for row in plan_user(user, COVERED, Settings())
    )
    assert [row[:6] for row in first_pass] == expected
    # 09:00 on 15 December lies inside the two days in every zone, from UTC+14 to UTC-12.
    due_user_ids = {row[0] for row in expected}
    assert {user.id for user in users if (user.birthday.month, user.birthday.day) == (12, 15)} <= due_user_ids
    assert not {user.id for user in users if user.birthday.month == 6} & due_user_ids
    assert ("invalid", 'unknown time zone "PST"') in {(row[4], row[5]) for row in first_pass}

    # A run owns the instants of the hour after its logical hour. Unknown zones are planned in the default
    # zone, UTC, whose hours the UTC users' rows already name; hours that planned nothing have nothing to redo.
    owning_runs = sorted({row[3].replace(minute=0) - timedelta(hours=1) for row in expected if row[3] is not None})
    assert FIRST_RUN + timedelta(hours=8) in owning_runs  # 09:00 UTC on 14 December: "PST" and the UTC users
    run_hours(hourly_dag, owning_runs)

    db.rollback()
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, occasion, occasion_date, send_at, status, last_error, updated_at FROM notifications"
        )
        assert sorted(cursor.fetchall()) == first_pass
    assert webhook.requests == []  # a year late: far outside the late window
