"""A team's users relation is untrusted input: one odd row is that row's problem, never anyone else's.

The users are read through a team-style view: a table whose every column may be NULL, joined one-to-many to
the users' e-mail addresses (so the view repeats a user once per address). Hypothesis fills it with NULLs
anywhere, repeated and NULL ids, ids at the ends of bigint, dates PostgreSQL holds and Python does not
(``infinity``, BC, year 20000), names of any text and any length, zones of any text; then the hourly DAG and
the sweep run on real Airflow (``dag.test()``) against a real receiver. Every valid user gets exactly one
message, at the instant the rules give; every other row is accounted for (``invalid`` with the column named,
or skipped when it has no id); no task fails.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings as hypothesis_settings, strategies as st

from birthday_pipeline.rules.occasions import BIRTHDAY
from birthday_pipeline.plan.planning import (
    User,
    Window,
    before_first_date_reason,
    hourly_window,
    not_unique_reason,
    plan_user,
)
from birthday_pipeline.deliver.messages import message_name
from birthday_pipeline.rules.calendar import local_instant
from birthday_pipeline.rules.timezones import load_zone, zone_names
from birthday_pipeline.settings import Relation, Settings
from tests.conftest import set_settings

TEAM_SCHEMA = """
DROP VIEW IF EXISTS team_users;
DROP TABLE IF EXISTS team_people, team_emails;
CREATE TABLE team_people (
    person_id bigint, given varchar(400), family text, born date, zone varchar, hired date
);
CREATE TABLE team_emails (person_id bigint, email text);
CREATE VIEW team_users AS
    SELECT p.person_id AS id, p.given AS first_name, p.family AS last_name, p.born AS birthday,
        p.zone AS timezone, p.hired AS hired_on
    FROM team_people AS p
    LEFT JOIN team_emails AS e ON e.person_id = p.person_id;
"""

# Zones an hour apart and more, with and without daylight saving time, half and quarter hours.
ZONES = ["UTC", "Africa/Abidjan", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
         "Pacific/Kiritimati", "Etc/GMT+12", "Australia/Lord_Howe", "America/St_Johns"]
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
NAMES = st.one_of(
    st.none(), TEXT, st.just(""), st.just(" \u200b"),
    st.text(st.sampled_from("ab\x07\x1b[\u202e<!channel>"), max_size=12),
    st.integers(250, 300).map(lambda length: "n" * length),
)
ZONE_TEXTS = st.one_of(st.none(), st.sampled_from(ZONES), st.sampled_from(["PST", " utc ", ""]), TEXT,
                       st.just("Z" * 200))
IDS = st.one_of(st.integers(1, 5), st.none(), st.sampled_from([2**63 - 1, -(2**63), 0]))
# A birthday as its kind, made a date once the run's instants are known: due in the window, due but BC, in
# the future, not due, or no date a calendar has.
BIRTHDAY_KINDS = st.sampled_from(["due", "due", "due", "due BC", "future", "not due", None, "infinity", "-infinity"])
HIRED = st.sampled_from([None, "infinity", "-infinity", "0044-03-15 BC", "20000-01-01", "not due"])


@dataclasses.dataclass(frozen=True)
class Person:
    """One row of ``team_people``, as generated."""

    person_id: int | None
    given: str | None
    family: str | None
    born_kind: str | None
    born_year: int
    zone: str | None
    hired: str | None
    emails: int


PEOPLE = st.lists(
    st.builds(Person, IDS, NAMES, NAMES, BIRTHDAY_KINDS, st.integers(1900, 2020), ZONE_TEXTS, HIRED,
              st.integers(0, 2)),
    min_size=1, max_size=10,
)


@dataclasses.dataclass(frozen=True)
class Run:
    """When the test's runs happen: the hourly window, the sweep's late window and the local send time."""

    now: datetime
    hourly: Window
    late: Window
    send_local_time: time

    @classmethod
    def now_(cls) -> Run:
        now = datetime.now(UTC)
        # The hourly run owning the last whole hour: every instant of its window has passed.
        anchor = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
        hourly = hourly_window(anchor)
        # Users in zones at UTC+0 now celebrate in the hourly window; the others earlier, in the late window.
        return cls(now, hourly, Window(now - timedelta(hours=48), now), (hourly.start + timedelta(minutes=30)).time())

    def due_date(self, zone_name: str | None) -> date:
        """The latest local date whose send instant in the zone (the default, UTC, if unknown) has passed by an hour
        and lies in the late window."""
        zone = load_zone(zone_name if zone_name in zone_names() else "UTC")
        days = (self.now.date() - timedelta(days=offset) for offset in range(-1, 4))
        return next(day for day in days
                    if self.late.start + timedelta(hours=12) <= local_instant(day, self.send_local_time, zone)
                    <= self.now - timedelta(minutes=30))

    def birthday(self, person: Person) -> str | None:
        """The text of the person's birthday in SQL."""
        if person.born_kind in (None, "infinity", "-infinity"):
            return person.born_kind
        due = self.due_date(person.zone)
        if person.born_kind == "due BC" and (due.month, due.day) != (2, 29):
            return f"{person.born_year:04d}-{due.month:02d}-{due.day:02d} BC"
        if person.born_kind == "future":
            return f"{due.year + 1}-{due.month:02d}-{min(due.day, 28):02d}"
        if person.born_kind == "not due":
            shifted = due + timedelta(days=100)
            return f"{person.born_year}-{shifted.month:02d}-{min(shifted.day, 28):02d}"
        year = person.born_year if (due.month, due.day) != (2, 29) else 2000
        return f"{year}-{due.month:02d}-{due.day:02d}"

    def hired(self, person: Person) -> str | None:
        if person.hired == "not due":
            shifted = self.now.date() + timedelta(days=100)
            return f"2001-{shifted.month:02d}-{min(shifted.day, 28):02d}"
        return person.hired


def insert_people(db, run: Run, people: list[Person]) -> list[tuple]:
    """The people and their e-mail addresses; each person's row as the view reads it (id, names, zone, dates)."""
    rows = [(person.person_id, person.given, person.family, run.birthday(person), person.zone, run.hired(person))
            for person in people]
    with db.cursor() as cursor:
        cursor.execute("TRUNCATE users, notifications, claim_leases, send_pacing RESTART IDENTITY CASCADE")
        cursor.execute("TRUNCATE team_people, team_emails")
        cursor.executemany("INSERT INTO team_people VALUES (%s, %s, %s, %s::date, %s, %s::date)", rows)
        cursor.executemany("INSERT INTO team_emails VALUES (%s, %s)",
                           [(person.person_id, f"{index}-{copy}@example.com")
                            for index, person in enumerate(people) for copy in range(person.emails)
                            if person.person_id is not None])
    db.commit()
    return rows


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the rules say each id is owed in the late window: a message (its instant and text) or a reason."""

    send_at: datetime | None
    message: str | None
    reason: str | None


def expected_notifications(run: Run, rows: list[tuple]) -> dict[int, Expected]:
    """By id, the birthday notification the rules owe; ids with no notification in the late window are absent."""
    settings = Settings(send_local_time=run.send_local_time)
    versions: dict[int, set[tuple]] = {}
    for row in rows:
        if row[0] is not None:
            versions.setdefault(row[0], set()).add(row[1:])
    owed = {}
    for user_id, rows_of_id in versions.items():
        planned = [(row, plan) for row in sorted(rows_of_id, key=repr)
                   for plan in plan_user(reference_user(user_id, row), run.late, settings)]
        if not planned:
            continue
        if len(rows_of_id) > 1:
            owed[user_id] = Expected(None, None, not_unique_reason(len(rows_of_id)))
            continue
        (row, plan), = planned
        reason = plan.reason
        if row[2] is not None and row[2].endswith(" BC") and reason in (None, "birthday is not in the past"):
            reason = before_first_date_reason(BIRTHDAY)
        if reason is not None:
            owed[user_id] = Expected(None, None, reason)
        else:
            greeted = message_name(row[0] or "", row[1] or "")
            owed[user_id] = Expected(plan.send_at, f"Hey, {greeted} it's your birthday", None)
    return owed


def reference_user(user_id: int, row: tuple) -> User:
    """The rules' view of one row: a birthday Python cannot hold is none, but a BC one keeps its month and day."""
    first_name, last_name, birthday, zone, _ = row
    if birthday is None or birthday.endswith("infinity"):
        return User(user_id, None, zone, first_name, last_name)
    if birthday.endswith(" BC"):
        birthday = "0001" + birthday[4:-3]
    return User(user_id, date.fromisoformat(birthday), zone, first_name, last_name)


@pytest.fixture
def team_view(db, monkeypatch):
    with db.cursor() as cursor:
        cursor.execute(TEAM_SCHEMA)
    db.commit()
    set_settings(monkeypatch, users_relation="team_users")
    yield
    with db.cursor() as cursor:
        cursor.execute("DROP VIEW team_users; DROP TABLE team_people, team_emails")
    db.commit()


@pytest.fixture(scope="module")
def dags(app_database_url):
    from tests.airflow_dagbag import DagBag

    bag = DagBag()
    return bag.get_dag("birthday_notifications"), bag.get_dag("birthday_sweep")


def run_hourly_then_sweep(dags, run: Run) -> None:
    hourly, sweep = dags
    hourly_run = hourly.test(logical_date=run.hourly.start - timedelta(hours=1))
    assert hourly_run.state == "success"
    sweep_run = sweep.test(logical_date=datetime.now(UTC))
    assert sweep_run.state == "success"


@hypothesis_settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=PEOPLE)
@example(people=[
    # The reproduction of issue 19: a NULL family name, an id repeated with other data, an id repeated by the join.
    Person(1, "Ada", None, "due", 1990, "UTC", None, 2),
    Person(2, "Grace", "Hopper", "due", 1985, "Asia/Kolkata", "infinity", 1),
    Person(3, "Alan", "Turing", "due", 1970, "Europe/Berlin", None, 0),
    Person(3, "Alan", "Turing", "due", 1971, "Europe/Berlin", None, 0),
    Person(None, "No", "Id", "due", 1980, "UTC", None, 0),
    Person(4, None, None, "due", 1980, "UTC", None, 0),
    Person(5, "Bell\x07\x1b[31m", "\u202eEvil <!channel>", "due BC", 44, "Z" * 200, "0044-03-15 BC", 1),
])
def test_every_valid_user_gets_one_message_and_every_other_row_says_why(
        db, webhook, team_view, dags, monkeypatch, people: list[Person]) -> None:
    run = Run.now_()
    set_settings(monkeypatch, send_local_time=run.send_local_time.isoformat())
    rows = insert_people(db, run, people)
    webhook.clear()

    run_hourly_then_sweep(dags, run)

    owed = expected_notifications(run, rows)
    requests = [request.json for request in webhook.requests if 200 <= request.status < 300]
    assert Counter(request["user_id"] for request in requests) == Counter(
        user_id for user_id, expected in owed.items() if expected.message is not None)
    assert {request["user_id"]: request["message"] for request in requests} == {
        user_id: expected.message for user_id, expected in owed.items() if expected.message is not None}
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, occasion, status, send_at, sent_at, last_error FROM notifications")
        notifications = cursor.fetchall()
    assert {user_id for user_id, *_ in notifications} == set(owed)
    for user_id, occasion, status, send_at, sent_at, last_error in notifications:
        expected = owed[user_id]
        assert occasion == "birthday"
        if expected.message is not None:
            assert (status, send_at, last_error) == ("sent", expected.send_at, None)
            assert sent_at >= send_at
        else:
            assert (status, last_error) == ("invalid", expected.reason)


def test_the_reproduction_sends_to_everyone_else(db, webhook, team_view, dags, monkeypatch) -> None:
    """Issue 19's case as figures: six users due, one with a NULL family name, one id repeated with other data
    and one row without an id beside them; before, nobody was sent anything."""
    run = Run.now_()
    set_settings(monkeypatch, send_local_time=run.send_local_time.isoformat())
    people = [Person(user_id, f"F{user_id}", None if user_id == 6 else f"L{user_id}", "due", 1990, "UTC", None, 1)
              for user_id in range(1, 7)]
    people += [Person(7, "Twin", "A", "due", 1990, "UTC", None, 0), Person(7, "Twin", "B", "due", 1990, "UTC", None, 0),
               Person(None, "No", "Id", "due", 1990, "UTC", None, 0)]
    insert_people(db, run, people)
    webhook.clear()

    run_hourly_then_sweep(dags, run)

    messages = sorted((request.json["user_id"], request.json["message"]) for request in webhook.requests)
    print(f"delivered to {len(messages)} of the 6 valid users")
    assert messages == [(user_id, f"Hey, F{user_id}{'' if user_id == 6 else f' L{user_id}'} it's your birthday")
                        for user_id in range(1, 7)]
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, status, last_error FROM notifications WHERE status <> 'sent'")
        assert cursor.fetchall() == [(7, "invalid", "id is not unique: the users relation has 2 different rows for it")]


def test_a_user_repeated_after_planning_is_not_sent(db, webhook, team_view, app_database_url) -> None:
    """A second, different row for a claimed user's id makes the claimed row invalid in the send task's re-check,
    instead of sending either of the two."""
    from birthday_pipeline.deliver.delivery import deliver_batch
    from birthday_pipeline.plan.planning import ReleaseBatch, plan_window
    from tests.integration.test_delivery import sender_for

    run = Run.now_()
    settings = Settings(send_local_time=run.send_local_time, users_relation=Relation(("team_users",)))
    insert_people(db, run, [Person(1, "One", "Row", "due", 1990, "UTC", None, 1),
                            Person(2, "Two", "Row", "due", 1990, "UTC", None, 1)])
    plan_window(db, run.hourly, settings)
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO team_people VALUES (1, 'Other', 'Row', NULL, NULL, NULL)")
    db.commit()
    webhook.clear()

    summary = deliver_batch(db, ReleaseBatch(None, 1, 2, 2), sender_for(webhook, app_database_url, settings))

    assert (summary.claimed, summary.sent, summary.skipped) == (2, 1, 1)
    assert [request.json["user_id"] for request in webhook.requests] == [2]
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, status, last_error FROM notifications ORDER BY user_id")
        assert cursor.fetchall() == [(1, "invalid", "id is not unique: the users relation has 2 different rows for it"),
                                     (2, "sent", None)]
