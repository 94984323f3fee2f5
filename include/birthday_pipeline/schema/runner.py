"""Apply the pending migrations (``files``) to a database: once each, in order, under a lock, checksummed.

One runner for every caller: the ``birthday_migrate`` DAG (``edge/migrate.py``), ``python -m
birthday_pipeline.schema apply`` (the console script ``birthday-pipeline-migrate``), ``make migrate``, docker
compose and the test fixtures.

- Each file is recorded in ``birthday_schema_migrations`` with its checksum; an applied file whose text
  changed is refused, naming it, and nothing runs.
- An advisory lock is held throughout, so two runners never interleave: the second waits, then finds
  nothing pending.
- An ordinary file runs in one transaction with its record, under a short ``lock_timeout``, so that DDL
  never queues the application's queries behind it for long.
- A no-transaction file runs on its own. A concurrent build that failed leaves an INVALID index behind, which
  ``IF NOT EXISTS`` would take for done: the runner drops the index the file names when it is INVALID, builds
  it again, and records the file only once that index is valid (or, for ``drops-index``, gone).
- A bundled-users file is recorded as skipped where a relation ``users`` existed before 0001 (a team's own
  table, of any shape): the pipeline then reads the relation its settings name and never changes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from importlib.resources.abc import Traversable
from typing import Any

from birthday_pipeline.db.connections import dict_cursor, sqlstate
from birthday_pipeline.db.statements import compose, load_sql
from birthday_pipeline.schema.files import (
    BUNDLED_USERS_TABLE,
    MIGRATIONS_DIR,
    TABLE,
    Migration,
    MigrationError,
    changed_migrations,
    shipped_migrations,
)
from birthday_pipeline.schema.status import Recorded, Status, as_recorded, read_recorded, relation_exists, status

log = logging.getLogger(__name__)

# Any constant shared by every migrator of this schema; the value spells "bday".
_MIGRATION_LOCK_KEY = 0x62646179
# How long a transactional migration may wait for a lock before it gives up (and changes nothing).
LOCK_TIMEOUT = "10s"
# How often a runner that waits for another's migration lock tries again.
LOCK_POLL_SECONDS = 0.5
_LOCK_NOT_AVAILABLE = "55P03"


class ChangedMigrationError(MigrationError):
    """An applied migration's file changed since it ran: a defect of the code, not of the database."""


def apply_migrations(conn: Any, directory: Traversable = MIGRATIONS_DIR, *, conn_id: str | None = None) -> list[str]:
    """Apply every pending migration through a DB-API connection (psycopg or psycopg2); return the names run.

    ``conn_id`` is the Airflow connection ``conn`` came from, which errors name (None: a connection of no
    Airflow connection, as in tools and tests). Skipped bundled-users migrations are recorded and logged, not
    returned.
    """
    database = conn_id or "the database"
    migrations = shipped_migrations(directory)
    with _autocommit(conn), dict_cursor(conn) as cursor, _migration_lock(cursor):
        with _transaction(cursor):
            cursor.execute(load_sql("schema/create_table"))
        recorded = {row.name: row for row in read_recorded(cursor)}
        _refuse_changed(changed_migrations({name: row.checksum for name, row in recorded.items()}, migrations),
                        database)
        ran = []
        for migration in migrations:
            if migration.name in recorded:
                continue
            skipped = _skip_reason(cursor, migration, recorded)
            if skipped is not None:
                recorded[migration.name] = _record(cursor, migration, skipped)
                log.info("Skipped migration %s: %s", migration.name, skipped)
                continue
            started = time.monotonic()
            if migration.no_transaction:
                recorded[migration.name] = _run_outside_transaction(cursor, migration, database)
            else:
                recorded[migration.name] = _run_in_transaction(cursor, migration, database)
            ran.append(migration.name)
            log.info("Applied migration %s to %s in %.2f s", migration.name, database, time.monotonic() - started)
    return ran


def migrate_connection(conn_id: str, *, apply: bool) -> tuple[Status, list[str]]:
    """Apply (or, without ``apply``, only read) the migrations of the database of Airflow connection ``conn_id``.

    Returns the status before applying and the names run.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    with closing(PostgresHook(postgres_conn_id=conn_id).get_conn()) as conn:
        before = status(conn)
        ran = apply_migrations(conn, conn_id=conn_id) if apply else []
    return before, ran


@contextmanager
def _autocommit(conn: Any) -> Iterator[None]:
    """Run with ``conn`` in autocommit, transactions begun explicitly; give it back as it was."""
    previous = conn.autocommit
    conn.commit()
    conn.autocommit = True
    try:
        yield
    finally:
        conn.autocommit = previous


@contextmanager
def _migration_lock(cursor: Any) -> Iterator[None]:
    """Hold the session's migration lock; say who holds it while waiting for it.

    It waits by trying again, never inside a blocking ``pg_advisory_lock``: a session blocked in a statement
    keeps a transaction open, and a ``CREATE INDEX CONCURRENTLY`` of the holder waits for every open
    transaction to end, which would deadlock the two.
    """
    waiting_since = None
    while True:
        cursor.execute("SELECT pg_try_advisory_lock(%(key)s) AS locked", {"key": _MIGRATION_LOCK_KEY})
        if cursor.fetchone()["locked"]:
            break
        if waiting_since is None:
            waiting_since = time.monotonic()
            cursor.execute(load_sql("schema/lock_holder"), {"key": _MIGRATION_LOCK_KEY})
            holder = cursor.fetchone()
            log.info("Waiting for the migration lock, held by server process %s", holder["pid"] if holder else "?")
        time.sleep(LOCK_POLL_SECONDS)
    if waiting_since is not None:
        log.info("Took the migration lock after %.1f s", time.monotonic() - waiting_since)
    try:
        yield
    finally:
        cursor.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": _MIGRATION_LOCK_KEY})


@contextmanager
def _transaction(cursor: Any) -> Iterator[None]:
    cursor.execute("BEGIN")
    try:
        yield
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    cursor.execute("COMMIT")


def _refuse_changed(changed: list[str], database: str) -> None:
    if changed:
        files = ", ".join(changed)
        raise ChangedMigrationError(
            f"migration {files} changed after it was applied to {database} (its checksum differs from the one "
            f"recorded in {TABLE}); nothing was applied. An applied migration must never change: restore the file "
            f"as it was (git log -p -- include/sql/migrations/{changed[0]}) and put the change in a new migration."
        )


def _skip_reason(cursor: Any, migration: Migration, recorded: dict[str, Recorded]) -> str | None:
    """Why a bundled-users migration must not run here, or None when it may (and for every other migration)."""
    if not migration.bundled_users:
        return None
    users_exists = relation_exists(cursor, "users")
    if migration.name == BUNDLED_USERS_TABLE:
        return "a relation users exists already: the application's own, left as it is" if users_exists else None
    creator = recorded.get(BUNDLED_USERS_TABLE)
    if creator is None or creator.skipped is not None:
        return f"users is not the bundled table (migration {BUNDLED_USERS_TABLE} did not create it)"
    if not users_exists:
        return "there is no relation users: the bundled table was dropped"
    return None


def _run_in_transaction(cursor: Any, migration: Migration, database: str) -> Recorded:
    try:
        with _transaction(cursor):
            cursor.execute(load_sql("schema/set_lock_timeout"), {"lock_timeout": LOCK_TIMEOUT})
            cursor.execute(migration.sql)
            return _record(cursor, migration, None)
    except Exception as error:
        if sqlstate(error) == _LOCK_NOT_AVAILABLE:
            raise MigrationError(
                f"migration {migration.name} waited more than {LOCK_TIMEOUT} for a lock on a table in use in "
                f"{database} and was rolled back; nothing of it was applied. Run the migration again, at a quieter "
                "moment if it recurs."
            ) from error
        raise


def _run_outside_transaction(cursor: Any, migration: Migration, database: str) -> Recorded:
    """Run a no-transaction migration; the index it builds must end valid (or the one it drops, gone)."""
    index = migration.index
    if index is not None and _index_valid(cursor, index) is False:
        log.warning("Index %s is INVALID (an earlier concurrent build failed); dropping it to build it again", index)
        cursor.execute(compose(cursor.connection, "schema/drop_index", index=[tuple(index.split("."))]), {})
    cursor.execute(migration.sql)
    if index is not None and not _index_valid(cursor, index):
        raise MigrationError(f"migration {migration.name} left index {index} missing or INVALID in {database} "
                             f"(is index={index} the name the file builds?); run it again")
    if migration.drops_index is not None and _index_valid(cursor, migration.drops_index) is not None:
        raise MigrationError(f"migration {migration.name} left index {migration.drops_index} in {database} "
                             f"(is drops-index={migration.drops_index} the name the file drops?); run it again")
    return _record(cursor, migration, None)


def _index_valid(cursor: Any, index: str) -> bool | None:
    cursor.execute(load_sql("schema/index_validity"), {"index": index})
    row = cursor.fetchone()
    return None if row is None else bool(row["valid"])


def _record(cursor: Any, migration: Migration, skipped: str | None) -> Recorded:
    cursor.execute(load_sql("schema/record"),
                   {"name": migration.name, "checksum": migration.checksum, "skipped": skipped})
    return as_recorded(cursor.fetchone())
