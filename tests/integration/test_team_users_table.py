"""The pipeline in a team's own database, against the users table its (Rails) application already has.

The database holds what a Rails application leaves: ``schema_migrations`` (with ``version``), a ``users``
table of another shape, and the people with birthdays in ``employees`` under other column names, with extra
columns and zone names as Rails stores them. The pipeline's tables live in a schema of their own; a view
over ``employees`` (docs/deploy.md) is named by ``users_relation``. While a thread keeps inserting
and updating employees, planning, sending, the sweep and the Birthdays page run on real Airflow (``dag.test()``,
a real API server) and a real receiver.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql
import pytest

from birthday_pipeline.plan.planning import Window, _upsert_parameters, upsert_statement, window_slots
from birthday_pipeline.rules.calendar import local_instant
from birthday_pipeline.rules.occasions import BIRTHDAY
from birthday_pipeline.rules.timezones import load_zone
from birthday_pipeline.schema.files import shipped_migrations
from birthday_pipeline.schema.runner import apply_migrations
from birthday_pipeline.settings import Settings
from tests.conftest import set_settings
from tests.real_services import get, login, plugin_api_server
from tools.local_postgres import airflow_connection, database_url, fresh_database

# The application's schema, as its own migrations left it (not the pipeline's).
APPLICATION = """
CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
INSERT INTO schema_migrations VALUES ('20190101000000'), ('20240612103000');
CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL UNIQUE, encrypted_password text);
CREATE TABLE employees (
    id             bigserial PRIMARY KEY,
    email          text NOT NULL,
    given_name     varchar(100) NOT NULL,
    family_name    varchar(100) NOT NULL,
    date_of_birth  date NOT NULL,
    time_zone      varchar DEFAULT 'UTC',
    started_on     date,
    salary_cents   bigint,
    created_at     timestamp(6) NOT NULL DEFAULT now(),
    updated_at     timestamp(6) NOT NULL DEFAULT now()
);
"""
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def docs_block(name: str) -> str:
    """The fenced block of docs/deploy.md marked ``<!-- tested: name -->``: what the docs tell a team to run."""
    text = DOCS.read_text(encoding="utf-8")
    after = text.split(f"<!-- tested: {name} -->\n", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def statements(block: str) -> list[str]:
    return [statement.strip() for statement in block.split(";\n") if statement.strip()]


OPERATOR, PASSWORD = "team-operator", "team-operator-password"
# The advisory lock (in the server's postgres database) that one test process at a time holds on team_app.
TEAM_DATABASE_LOCK_KEY = 23_0001


class ApplicationWrites(threading.Thread):
    """The application at work: new employees (born on other days) and updates of every row, committed one by one."""

    def __init__(self, url: str, avoid: date) -> None:
        super().__init__(daemon=True)
        self.url, self.avoid, self.stop, self.writes, self.error = url, avoid, threading.Event(), 0, None

    def run(self) -> None:
        try:
            with closing(psycopg2.connect(self.url)) as conn:
                conn.autocommit = True
                with conn.cursor() as cursor:
                    while not self.stop.is_set() and self.writes < 20_000:
                        born = self.avoid + timedelta(days=100 + self.writes % 200)
                        cursor.execute(
                            "INSERT INTO employees (email, given_name, family_name, date_of_birth, time_zone)"
                            " VALUES (%s, 'New', 'Hire', %s, 'Berlin')", (f"n{self.writes}@example.com",
                                                                          born.replace(year=1991)))
                        cursor.execute("UPDATE employees SET salary_cents = coalesce(salary_cents, 0) + 1,"
                                       " updated_at = now(), email = email WHERE id %% 3 = %s", (self.writes % 3,))
                        self.writes += 2
                        time.sleep(0.01)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def due_birthday(zone: str, send_time: Any, now: datetime) -> date:
    """A birthday (in 1990) whose instant this year lies 3 to 27 hours before ``now`` in ``zone``: the sweep's."""
    for days in range(-3, 2):
        day = (now + timedelta(days=days)).date()
        instant = local_instant(day, send_time, load_zone(zone))
        if now - timedelta(hours=27) <= instant <= now - timedelta(hours=3):
            return day.replace(year=1990)
    raise AssertionError(f"no due day in {zone}")


def as_role(url: str, role: str) -> str:
    """``url`` logging in as ``role`` (the embedded server trusts local connections)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rsplit('@', 1)[-1]}"))


@pytest.fixture
def team_database(monkeypatch: pytest.MonkeyPatch, webhook) -> Iterator[dict[str, Any]]:
    """The application's database, set up as docs/deploy.md says, behind connections of the two roles.

    Its name and roles are the server's, not one test process's (roles belong to the whole cluster, and the
    docs' statements name them): a session-level advisory lock, held until the test ends, keeps any other
    test process on the same server (another pytest-xdist worker, another checkout's run) out meanwhile."""
    server = database_url(os.environ["BIRTHDAY_TEST_DATABASE_URL"], "postgres")
    with closing(psycopg2.connect(server)) as lock:
        lock.autocommit = True  # the lock is the session's: no transaction left open beside the test
        with lock.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%(key)s)", {"key": TEAM_DATABASE_LOCK_KEY})
        url = fresh_database(server, "team_app")
        with closing(psycopg2.connect(url)) as conn, conn.cursor() as cursor:
            for role in ("birthday_app", "birthday_migrator"):  # roles outlive the databases of earlier runs
                cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            cursor.execute(APPLICATION)
            cursor.execute(docs_block("team-database"))
            conn.commit()
        with closing(psycopg2.connect(as_role(url, "birthday_migrator"))) as conn, conn.cursor() as cursor:
            cursor.execute(docs_block("team-view"))
            conn.commit()
        monkeypatch.setenv("AIRFLOW_CONN_BIRTHDAY_DB", airflow_connection(as_role(url, "birthday_app")))
        monkeypatch.setenv("AIRFLOW_CONN_BIRTHDAY_DB_ADMIN", airflow_connection(as_role(url, "birthday_migrator")))
        set_settings(monkeypatch, users_relation="birthday.team_users")
        yield {"url": url, "receiver": webhook}


def build_team_indexes(url: str) -> None:
    with closing(psycopg2.connect(url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cursor:
            for statement in statements(docs_block("team-indexes")):
                cursor.execute(statement)


def rows(url: str, statement: str, parameters: Any = None) -> list[tuple]:
    with closing(psycopg2.connect(url)) as conn, conn.cursor() as cursor:
        cursor.execute(statement, parameters)
        return cursor.fetchall()


def test_the_pipeline_runs_against_the_teams_own_table_while_the_application_writes(team_database, tmp_path,
                                                                                     monkeypatch) -> None:
    from tests.airflow_dagbag import DagBag

    url, receiver = team_database["url"], team_database["receiver"]
    bag = DagBag()
    migrate = bag.get_dag("birthday_migrate").test(run_conf={"conn_id": "birthday_db_admin", "apply": True})
    assert migrate.state == "success"
    assert rows(url, "SELECT name FROM birthday.birthday_schema_migrations WHERE skipped IS NULL ORDER BY 1") == [
        (m.name,) for m in shipped_migrations() if not m.bundled_users]
    # The DAGs' role runs no DDL and reads the application's table only through the view.
    with closing(psycopg2.connect(as_role(url, "birthday_app"))) as app:
        for statement in ("CREATE TABLE birthday.nope (id int)", "CREATE TABLE public.nope (id int)",
                          "SELECT count(*) FROM public.employees", "ALTER TABLE notifications ADD COLUMN x int"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), app.cursor() as cursor:
                cursor.execute(statement)
            app.rollback()
    # The pipeline's tables went to its own schema; the application's users and schema_migrations are untouched.
    assert rows(url, "SELECT to_regclass('birthday.notifications')::text,"
                     " to_regclass('birthday.birthday_schema_migrations')::text") == [
        ("birthday.notifications", "birthday.birthday_schema_migrations")]
    assert rows(url, "SELECT relnamespace::regnamespace::text FROM pg_class WHERE relname = 'notifications'") == [
        ("birthday",)]
    assert rows(url, "SELECT version FROM public.schema_migrations ORDER BY 1") == [("20190101000000",),
                                                                                    ("20240612103000",)]
    assert rows(url, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attnum > 0") == [
        (3,)]

    instant = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    today, send_time = instant.date(), instant.time()
    people = [  # (given, family, born, time_zone, started_on)
        ("Ada", "Lovelace", today.replace(year=1990), "UTC", None),  # due now: the hourly run sends it
        ("Grace", "Hopper", today.replace(year=1985), None, None),  # no zone: the default, UTC
        ("Alan", "Turing", date(1980, 1, 1) if today.timetuple().tm_yday > 1 else date(1980, 1, 2), "UTC",
         today.replace(year=2015)),  # a work anniversary today
        ("Edsger", "Dijkstra", due_birthday("America/New_York", send_time, instant), "Eastern Time (US & Canada)",
         None),
        ("Srinivasa", "Ramanujan", due_birthday("Asia/Kolkata", send_time, instant), "Chennai", None),
        ("Tu", "Youyou", due_birthday("Asia/Kathmandu", send_time, instant), "Kathmandu", None),
        ("Bad", "Zone", today.replace(year=1990), " eastern time (us & canada) ", None),
    ]
    with closing(psycopg2.connect(url)) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO employees (email, given_name, family_name, date_of_birth, time_zone, started_on,"
            " salary_cents) VALUES (%s, %s, %s, %s, %s, %s, 100)",
            [(f"{given.lower()}@example.com", given, family, born, zone, started)
             for given, family, born, zone, started in people])
        conn.commit()

    writer = ApplicationWrites(url, today)
    writer.start()
    try:
        build_team_indexes(url)  # while the application writes, as the docs say
        writes_before_runs = writer.writes
        hourly, sweep = bag.get_dag("birthday_notifications"), bag.get_dag("birthday_sweep")
        assert hourly.test(logical_date=instant.replace(minute=0, second=0) - timedelta(hours=1)).state == "success"
        assert sweep.test().state == "success"
        with plugin_api_server(tmp_path, {OPERATOR: PASSWORD}) as api:
            token = login(api, OPERATOR, PASSWORD)
            ids = dict(rows(url, "SELECT given_name, id FROM employees WHERE given_name IN ('Edsger', 'Alan')"))
            status, edsger = get(f"{api}/birthdays/api/users/{ids['Edsger']}", token)
            alan_status, alan = get(f"{api}/birthdays/api/users/{ids['Alan']}", token)
            day_status, day = get(f"{api}/birthdays/api/day?day={today.isoformat()}", token)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None
    assert writer.writes > writes_before_runs > 0  # the application kept writing throughout

    by_name = {name: user_id for name, user_id in rows(url, "SELECT given_name, id FROM employees WHERE email"
                                                            " NOT LIKE 'n%@example.com'")}
    received = sorted((request.json["user_id"], request.json["occasion"], request.json["message"])
                      for request in receiver.requests)
    assert received == sorted([
        (by_name["Ada"], "birthday", "Hey, Ada Lovelace it's your birthday"),
        (by_name["Grace"], "birthday", "Hey, Grace Hopper it's your birthday"),
        (by_name["Alan"], "work_anniversary", "Hey, Alan Turing happy work anniversary"),
        (by_name["Edsger"], "birthday", "Hey, Edsger Dijkstra it's your birthday"),
        (by_name["Srinivasa"], "birthday", "Hey, Srinivasa Ramanujan it's your birthday"),
        (by_name["Tu"], "birthday", "Hey, Tu Youyou it's your birthday"),
    ])
    planned = {user_id: (status, send_at, reason) for user_id, status, send_at, reason in rows(
        url, "SELECT user_id, status, send_at, last_error FROM birthday.notifications WHERE occasion = 'birthday'")}
    assert planned[by_name["Bad"]] == (
        "invalid", None, 'unknown time zone " eastern time (us & canada) "; did you mean "Eastern Time (US & Canada)"?')
    born = {given: birthday for given, _, birthday, _, _ in people}
    for name, zone in (("Edsger", "America/New_York"), ("Srinivasa", "Asia/Kolkata"), ("Tu", "Asia/Kathmandu")):
        celebrated = born[name].replace(year=today.year)
        expected = local_instant(celebrated, send_time, load_zone(zone))
        if expected > instant:  # the due day fell in the previous year's calendar (around New Year)
            expected = local_instant(born[name].replace(year=today.year - 1), send_time, load_zone(zone))
        assert planned[by_name[name]] == ("sent", expected, None), name
    others = "SELECT count(*) FROM birthday.notifications WHERE user_id NOT IN %s"
    assert rows(url, others, (tuple(by_name.values()),)) == [(0,)]

    # The Birthdays page reads the same relation: the Rails zone shown as its IANA zone.
    assert status == 200 and alan_status == 200 and day_status == 200
    assert edsger["timezone"] == "Eastern Time (US & Canada)"
    assert {entry["zone"] for entry in edsger["next"]} == {"America/New_York"}
    assert [n["status"] for n in edsger["notifications"]] == ["sent"]
    assert {entry["occasion"] for entry in alan["next"]} == {"birthday", "work_anniversary"}
    assert day["counts"]["work_anniversary"]["sent"] == 1


def test_planning_reads_the_teams_table_through_its_index(team_database) -> None:
    url = team_database["url"]
    with closing(psycopg2.connect(as_role(url, "birthday_migrator"))) as conn:
        apply_migrations(conn)
    build_team_indexes(url)
    with closing(psycopg2.connect(as_role(url, "birthday_app"))) as conn:
        settings = Settings.from_variable_text('{"users_relation": "birthday.team_users"}')
        window = Window(datetime(2026, 12, 15, 9, tzinfo=UTC), datetime(2026, 12, 15, 10, tzinfo=UTC))
        statement = upsert_statement(conn, settings, BIRTHDAY)
        with conn.cursor() as cursor:
            # Too few rows here for the planner to prefer an index on its own: forbid the scan of the whole table,
            # so the plan shows whether the index on employees matches the expression through the view at all.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement,
                           _upsert_parameters(window_slots(window, settings, BIRTHDAY), settings, BIRTHDAY))
            plan = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
    print(plan)
    assert "employees_birth_month_day_idx on employees" in plan, plan
    assert "Seq Scan on employees" not in plan, plan
