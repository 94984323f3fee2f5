"""The set-based planning SQL agrees with the per-user rules, for users in every zone on every day of the year.

Windows of random lengths tile two years (one of them leap); the rows the SQL upserts over all of them must
equal, row for row, what ``plan_user`` owes each user over the whole span.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from birthday_pipeline.plan.planning import User, Window, plan_user, plan_window
from birthday_pipeline.rules.calendar import Feb29Rule
from birthday_pipeline.rules.timezones import zone_names
from birthday_pipeline.settings import Settings
from tests.conftest import insert_users

SPAN = Window(datetime(2026, 12, 30, 17, 11, tzinfo=UTC), datetime(2029, 1, 2, 7, tzinfo=UTC))


def random_users(seed: int, count: int) -> list[User]:
    """Users cycling through every zone and every day of a leap year, plus NULL and unknown zones."""
    rng = random.Random(seed)
    zones = sorted(zone_names()) + [None, None, "PST", "Mars/Olympus_Mons", "europe/paris"]
    users = []
    for index in range(count):
        day_of_year = date(2000, 1, 1) + timedelta(days=(index * 7) % 366)
        year = rng.choice([1952, 1968, 1984, 2000]) if (day_of_year.month, day_of_year.day) == (2, 29) else (
            rng.randint(1930, 2015)
        )
        users.append(User(index + 1, day_of_year.replace(year=year), zones[index % len(zones)]))
    return users


def tiling_windows(seed: int) -> list[Window]:
    """Consecutive windows from one minute to 40 days long that exactly cover ``SPAN``."""
    rng = random.Random(seed)
    windows, start = [], SPAN.start
    while start < SPAN.end:
        length = timedelta(minutes=rng.choice([1, 17, 60, 60 * 7, 60 * 24, 60 * 24 * 9, 60 * 24 * 40]))
        end = min(start + length, SPAN.end)
        windows.append(Window(start, end))
        start = end
    return windows


@pytest.mark.parametrize(
    "settings",
    [
        Settings(),
        # 02:30 lies in a DST gap in many zones; a non-UTC default zone for NULL and unknown zones.
        Settings(send_local_time=time(2, 30), feb29_rule=Feb29Rule.MAR1, default_timezone="America/Sao_Paulo"),
    ],
    ids=["09:00-feb28-UTC", "02:30-mar1-Sao_Paulo"],
)
def test_sql_planning_agrees_with_the_rules(db, settings: Settings) -> None:
    users = random_users(seed=20261128, count=4000)
    insert_users(db, users)

    for window in tiling_windows(seed=7):
        plan_window(db, window, settings)

    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, occasion_date, send_at, status, last_error FROM notifications")
        planned_by_sql = sorted(cursor.fetchall(), key=repr)
    expected = sorted(
        (
            (row.user_id, row.occasion_date, row.send_at, row.status, row.reason)
            for user in users
            for row in plan_user(user, SPAN, settings)
        ),
        key=repr,
    )
    assert len(expected) > 2 * len(users) * 0.9  # nearly everyone twice in two years
    assert planned_by_sql == expected
    assert {row[3] for row in expected} == {"scheduled", "invalid"}
