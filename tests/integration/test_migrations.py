"""The migration runner against real PostgreSQL: each file once, under a lock, checksummed, leaving a team's own
``users`` (and Rails' ``schema_migrations``) alone, and never recording a concurrent index build that left an
INVALID index. Messages name the connection id they are given (here one other than ``birthday_db``).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from birthday_pipeline.schema import runner
from birthday_pipeline.schema.check import schema_problems
from birthday_pipeline.schema.files import MigrationError, shipped_migrations
from birthday_pipeline.schema.runner import ChangedMigrationError, apply_migrations
from birthday_pipeline.schema.status import status
from birthday_pipeline.settings import Relation
from birthday_pipeline.edge.connections import open_database
from tests.conftest import per_worker
from tools.local_postgres import airflow_connection, database_url, fresh_database

pytestmark = pytest.mark.core

PROJECT_DIR = Path(__file__).resolve().parents[2]
SHIPPED = [migration.name for migration in shipped_migrations()]
BUNDLED_USERS = [migration.name for migration in shipped_migrations() if migration.bundled_users]
RELATION = Relation(("users",))
CONN_ID = "birthday_db_admin"


@pytest.fixture
def fresh_url() -> str:
    """An empty database of its own."""
    return fresh_database(database_url(os.environ["BIRTHDAY_TEST_DATABASE_URL"], "postgres"),
                          per_worker("birthday_migrations"))


@pytest.fixture
def conn(fresh_url: str) -> Iterator[Any]:
    with closing(psycopg2.connect(fresh_url)) as connection:
        yield connection


def query(conn: Any, statement: str, parameters: Any = None) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(statement, parameters)
        rows = cursor.fetchall() if cursor.description else []
    conn.commit()
    return rows


def recorded(conn: Any) -> dict[str, str | None]:
    return dict(query(conn, "SELECT name, skipped FROM birthday_schema_migrations ORDER BY name"))


def test_a_fresh_database_gets_every_migration_once_and_says_so(conn) -> None:
    assert schema_problems(conn, RELATION, ["hired_on"], conn_id=CONN_ID) == [
        f"{CONN_ID} has no migrations of this pipeline (no table birthday_schema_migrations), this code needs "
        f"{SHIPPED[-1][:4]}: trigger birthday_migrate (or run `python -m birthday_pipeline.schema apply --conn-id "
        f"{CONN_ID}`)"]
    assert apply_migrations(conn) == SHIPPED
    assert recorded(conn) == dict.fromkeys(SHIPPED)
    assert apply_migrations(conn) == []
    current = status(conn)
    assert (current.pending, current.changed, current.unknown, current.version) == ([], [], [], SHIPPED[-1][:4])
    assert schema_problems(conn, RELATION, ["hired_on"], conn_id=CONN_ID) == []
    # The bundled table has everything planning reads, and its indexes are valid.
    assert query(conn, "SELECT indexrelid::regclass::text, indisvalid FROM pg_index"
                       " WHERE indrelid = 'users'::regclass ORDER BY 1") == [
        ("users_birth_month_day_covering_idx", True), ("users_hired_on_month_day_idx", True), ("users_pkey", True)]


def test_the_schema_check_names_the_version_and_what_is_missing(conn) -> None:
    apply_migrations(conn)
    query(conn, "DELETE FROM birthday_schema_migrations WHERE name = %s", (SHIPPED[-1],))
    at = SHIPPED[-2][:4]
    assert schema_problems(conn, RELATION, ["hired_on"], conn_id=CONN_ID) == [
        f"{CONN_ID} is at {at}, this code needs {SHIPPED[-1][:4]} (not applied: {SHIPPED[-1]}): "
        "trigger birthday_migrate"]
    assert apply_migrations(conn) == [SHIPPED[-1]]
    assert schema_problems(conn, Relation(("accounts",)), ["hired_on"], conn_id=CONN_ID) == [
        "the users relation accounts (users_relation in Variable birthday_settings) does not exist in "
        "birthday_db_admin, or is not on this role's search path; see docs/deploy.md"]
    query(conn, "CREATE VIEW accounts AS SELECT id::text AS id, first_name, birthday::timestamp AS birthday FROM users")
    assert schema_problems(conn, Relation(("accounts",)), ["hired_on"], conn_id=CONN_ID) == [
        "the users relation accounts (users_relation in Variable birthday_settings) has no column last_name, "
        "timezone, hired_on; the pipeline reads id, first_name, last_name, birthday, timezone, hired_on: write a "
        "view that names them (docs/deploy.md)",
        "in the users relation accounts (users_relation in Variable birthday_settings), birthday is timestamp "
        "without time zone, not date; id is text, not an integer: cast it in the view (docs/deploy.md)"]
    # A migration numbered below the newest one applied, as a branch merged late adds it: a gap, not a lag.
    query(conn, "DELETE FROM birthday_schema_migrations WHERE name = %s", (SHIPPED[1],))
    assert schema_problems(conn, RELATION, ["hired_on"], conn_id=CONN_ID) == [
        f"{CONN_ID} is at {SHIPPED[-1][:4]} but lacks older ones (not applied: {SHIPPED[1]}): "
        "trigger birthday_migrate"]


def test_two_runners_at_once_apply_each_migration_once(fresh_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", airflow_connection(fresh_url))
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            # Through PostgresHook, as tasks connect: psycopg 3 where the platform has it, else psycopg2.
            with closing(open_database(CONN_ID)) as connection:
                start.wait()
                results.append(apply_migrations(connection))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(results, key=len) == [[], SHIPPED]
    with closing(psycopg2.connect(fresh_url)) as connection:
        assert list(recorded(connection)) == SHIPPED


def test_a_changed_applied_migration_is_refused_and_nothing_runs(conn, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_a.sql").write_text("CREATE TABLE a (id int);\n", encoding="utf-8")
    (directory / "0003_b.sql").write_text("CREATE TABLE b (id int);\n", encoding="utf-8")
    assert apply_migrations(conn, directory) == ["0001_a.sql", "0003_b.sql"]
    (directory / "0001_a.sql").write_text("CREATE TABLE a (id int, extra text);\n", encoding="utf-8")
    (directory / "0002_c.sql").write_text("CREATE TABLE c (id int);\n", encoding="utf-8")  # a gap, filled late
    with pytest.raises(ChangedMigrationError,
                       match=rf"migration 0001_a\.sql changed after it was applied to {CONN_ID} "):
        apply_migrations(conn, directory, conn_id=CONN_ID)
    assert list(recorded(conn)) == ["0001_a.sql", "0003_b.sql"]
    assert status(conn, directory).changed == ["0001_a.sql"]
    assert query(conn, "SELECT to_regclass('c')") == [(None,)]
    (directory / "0001_a.sql").write_text("CREATE TABLE a (id int);\n", encoding="utf-8")
    assert apply_migrations(conn, directory) == ["0002_c.sql"]  # a lower number merged later still runs


def test_a_teams_own_users_table_and_rails_schema_migrations_are_left_alone(conn) -> None:
    query(conn, """
        CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
        INSERT INTO schema_migrations VALUES ('20240101000000');
        CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL, time_zone varchar);
        CREATE INDEX users_email_idx ON users (email);
    """)
    shape = "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'users'::regclass" \
            " AND attnum > 0 ORDER BY attnum"
    before = (query(conn, shape), query(conn, "SELECT indexrelid::regclass::text FROM pg_index"
                                              " WHERE indrelid = 'users'::regclass ORDER BY 1"))

    assert apply_migrations(conn) == [name for name in SHIPPED if name not in BUNDLED_USERS]

    assert {name for name, skipped in recorded(conn).items() if skipped} == set(BUNDLED_USERS)
    assert recorded(conn)["0001_users.sql"] == "a relation users exists already: the application's own, left as it is"
    assert (query(conn, shape), query(conn, "SELECT indexrelid::regclass::text FROM pg_index"
                                            " WHERE indrelid = 'users'::regclass ORDER BY 1")) == before
    assert query(conn, "SELECT obj_description('users'::regclass, 'pg_class')") == [(None,)]
    assert query(conn, "SELECT * FROM schema_migrations") == [("20240101000000",)]
    assert query(conn, "SELECT count(*) FROM pg_constraint WHERE confrelid = 'users'::regclass") == [(0,)]


def test_an_invalid_index_left_by_a_failed_concurrent_build_is_built_again(conn, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_people.sql").write_text("CREATE TABLE people (email text);\n"
                                               "INSERT INTO people VALUES ('a'), ('a');\n", encoding="utf-8")
    (directory / "0002_people_email_index.sql").write_text(
        "-- birthday_pipeline: no-transaction index=people_email_idx\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS people_email_idx ON people (email);\n", encoding="utf-8")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        apply_migrations(conn, directory)
    assert query(conn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'people_email_idx'::regclass") == [(False,)]
    assert list(recorded(conn)) == ["0001_people.sql"]

    query(conn, "DELETE FROM people WHERE ctid = (SELECT max(ctid) FROM people)")
    assert apply_migrations(conn, directory) == ["0002_people_email_index.sql"]
    assert query(conn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'people_email_idx'::regclass") == [(True,)]


def test_a_migration_that_waits_too_long_for_a_lock_changes_nothing(conn, fresh_url: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_t.sql").write_text("CREATE TABLE t (id int);\n", encoding="utf-8")
    (directory / "0002_t_column.sql").write_text("ALTER TABLE t ADD COLUMN note text;\n", encoding="utf-8")
    shutil.move(directory / "0002_t_column.sql", tmp_path / "0002_t_column.sql")
    apply_migrations(conn, directory)
    shutil.move(tmp_path / "0002_t_column.sql", directory / "0002_t_column.sql")
    monkeypatch.setattr(runner, "LOCK_TIMEOUT", "300ms")
    with closing(psycopg2.connect(fresh_url)) as reader, reader.cursor() as cursor:
        cursor.execute("SELECT * FROM t")  # a transaction of the application's, still open
        with pytest.raises(MigrationError, match=r"0002_t_column\.sql waited more than 300ms for a lock"):
            apply_migrations(conn, directory)
    assert list(recorded(conn)) == ["0001_t.sql"]
    assert apply_migrations(conn, directory) == ["0002_t_column.sql"]
