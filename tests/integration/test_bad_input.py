"""Bad input never stops the pipeline nor costs anyone else their message; each bad row says why.

A sweep run (a real Airflow run under ``dag.test()``) plans and sends a day's users mixing good rows with
bad zones, names and birthdays; a property-based test drives the planning SQL with arbitrary users and
holds it to the per-user rules.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from birthday_pipeline.plan.planning import MAX_NAME_LENGTH, User, Window, plan_user, plan_window
from birthday_pipeline.rules.blanks import blank_characters
from birthday_pipeline.rules.timezones import zone_names
from birthday_pipeline.settings import Settings
from tests.conftest import insert_users

HOSTILE_FIRST = "Robert'); DROP TABLE users;--"
HOSTILE_LAST = 'O"Brien \\ %s %(x)s $1 ?'


def test_a_sweep_plans_and_sends_the_good_rows_and_explains_the_bad_ones(db, webhook, app_database_url) -> None:
    from tests.airflow_dagbag import DagBag

    yesterday = datetime.now(UTC).date() - timedelta(days=1)  # 09:00 yesterday is inside the late window
    born = yesterday.replace(year=1990)
    users = [
        User(1, born, "UTC", "Ada", "Lovelace"),
        User(2, born, "Mars/Olympus_Mons", "F", "L"),
        User(3, born, " america/new_york ", "F", "L"),
        User(4, born, "PST", "F", "L"),
        User(5, born, "US/Eastern", "F", "L"),  # a deprecated alias is still a zone of the tz database
        User(6, born, "America/New_York", "F", "L"),
        User(7, born, "UTC", "", "  "),
        User(8, born, "UTC", "x" * 10_000, "L"),
        User(9, born, "UTC", HOSTILE_FIRST, HOSTILE_LAST),
        User(10, born, "Asia/Jerusalem", "🎉 זואי", "مرحبا"),
        User(11, yesterday.replace(year=2090), "UTC", "F", "L"),
        User(12, born, "UTC", "Cher", " "),
        # Blank in Unicode: no-break, zero-width, ideographic and line-separator spaces, BOM, Hangul fillers.
        User(13, born, "UTC", "\u00a0", "\u200b"),
        User(14, born, "UTC", "\u3000", "\u3164\u2800"),
        User(15, born, "UTC", "\ufeff\u180e", "\t\u2028\u115f"),
        User(16, born, "UTC", "\u3000Zoë\u200b", "\u00a0"),
    ]
    insert_users(db, users)

    sweep = DagBag().get_dag("birthday_sweep")
    assert sweep.test(logical_date=datetime.now(UTC)).state == "success"

    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, status, last_error, send_at FROM notifications ORDER BY user_id")
        planned = {user_id: (status, reason, send_at) for user_id, status, reason, send_at in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM users")
        assert cursor.fetchone() == (len(users),)
    assert {user_id: status_reason[:2] for user_id, status_reason in planned.items()} == {
        1: ("sent", None),
        2: ("invalid", 'unknown time zone "Mars/Olympus_Mons"'),
        3: ("invalid", 'unknown time zone " america/new_york "; did you mean "America/New_York"?'),
        4: ("invalid", 'unknown time zone "PST"'),
        5: ("sent", None),
        6: ("sent", None),
        7: ("invalid", "user has no name"),
        8: ("invalid", f"first_name longer than {MAX_NAME_LENGTH} characters"),
        9: ("sent", None),
        10: ("sent", None),
        11: ("invalid", "birthday is not in the past"),
        12: ("sent", None),
        13: ("invalid", "user has no name"),
        14: ("invalid", "user has no name"),
        15: ("invalid", "user has no name"),
        16: ("sent", None),
    }
    assert planned[5][2] == planned[6][2] == datetime.combine(yesterday, time(14), UTC)
    assert all(send_at is None for status, _, send_at in planned.values() if status == "invalid")

    messages = {request.json["user_id"]: request.json["message"] for request in webhook.requests}
    assert messages == {
        1: "Hey, Ada Lovelace it's your birthday",
        5: "Hey, F L it's your birthday",
        6: "Hey, F L it's your birthday",
        9: f"Hey, {HOSTILE_FIRST} {HOSTILE_LAST} it's your birthday",
        10: "Hey, 🎉 זואי مرحبا it's your birthday",
        12: "Hey, Cher it's your birthday",
        16: "Hey, Zoë it's your birthday",
    }
    hostile = next(request for request in webhook.requests if request.json["user_id"] == 9)
    assert json.loads(hostile.body.decode("utf-8"))["message"].startswith(f"Hey, {HOSTILE_FIRST} ")


# Users born on the days around 1 March in any year (future ones included), in any zone or none, with
# zone names mangled the ways people mangle them, and names of any text PostgreSQL can store; names of blank
# characters alone (birthday_pipeline.rules.blanks) are drawn as often as any other text.
WINDOW = Window(datetime(2027, 2, 27, 12, tzinfo=UTC), datetime(2027, 3, 2, 12, tzinfo=UTC))
ZONES = sorted(zone_names())
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=MAX_NAME_LENGTH + 4)
NAMES = st.one_of(TEXT, st.text(st.sampled_from(blank_characters()), max_size=4))
zone_names_as_given = st.one_of(
    st.none(),
    st.sampled_from(ZONES),
    st.sampled_from(ZONES).map(str.upper),
    st.sampled_from(ZONES).map(lambda name: f" {name.lower()}\t"),
    st.sampled_from(ZONES).map(lambda name: f"\u00a0{name.lower()}\u200b"),
    st.sampled_from(["PST", "CEST", "GMT+3", "UTC+01:00", "", " "]),
    TEXT,
)


@st.composite
def arbitrary_users(draw: st.DrawFn) -> list[User]:
    count = draw(st.integers(1, 12))
    users = []
    for user_id in range(1, count + 1):
        month, day = draw(st.sampled_from([(2, 26), (2, 27), (2, 28), (2, 29), (3, 1), (3, 2)]))
        year = draw(st.sampled_from(range(1904, 2097, 4)) if (month, day) == (2, 29) else st.integers(1900, 2100))
        users.append(User(user_id, date(year, month, day), draw(zone_names_as_given), draw(NAMES), draw(NAMES)))
    return users


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=arbitrary_users(), default_zone=st.sampled_from(["UTC", "Pacific/Kiritimati", "America/Adak"]))
def test_planning_sql_agrees_with_the_rules_for_arbitrary_users(db, users: list[User], default_zone: str) -> None:
    settings = Settings(default_timezone=default_zone)
    with db.cursor() as cursor:
        cursor.execute("TRUNCATE users, notifications RESTART IDENTITY CASCADE")
    insert_users(db, users)

    plan_window(db, WINDOW, settings)

    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, occasion_date, send_at, status, last_error FROM notifications")
        planned_by_sql = sorted(cursor.fetchall(), key=repr)
    expected = sorted(
        ((row.user_id, row.occasion_date, row.send_at, row.status, row.reason)
         for user in users for row in plan_user(user, WINDOW, settings)),
        key=repr,
    )
    assert planned_by_sql == expected
