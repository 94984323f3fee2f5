"""Migrate the pipeline's database and say where it stands: the SQL files of ``include/sql/migrations/``.

One runner for every caller: the ``birthday_migrate`` DAG, ``python -m birthday_pipeline.schema.migrations`` (the
console script ``birthday-pipeline-migrate``), ``make migrate``, docker compose and the test fixtures.

- Files run once each, in name order; numbers may have gaps, and a file merged later with a lower number
  than one already applied still runs. Each is recorded in ``birthday_schema_migrations`` with the sha256
  of its text; an applied file whose text changed is refused, naming it, and nothing runs.
- An advisory lock is held throughout, so two runners never interleave: the second waits, then finds
  nothing pending.
- An ordinary file runs in one transaction with its record, under a short ``lock_timeout``, so that DDL
  never queues the application's queries behind it for long.
- A file whose leading comment lines include ``-- birthday_pipeline: no-transaction`` holds one statement
  that cannot run in a transaction (``CREATE INDEX CONCURRENTLY``, which builds an index without blocking
  writes) and runs on its own. A concurrent build that failed leaves an INVALID index behind, which
  ``IF NOT EXISTS`` would take for done: the runner drops such an index and builds it again, and records
  the file only once the index is valid.
- ``-- birthday_pipeline: bundled-users`` marks a migration of the bundled ``users`` table (migration 0001's).
  Where a relation ``users`` existed before 0001 (a team's own table, of any shape), 0001 and every such
  file are recorded as skipped: the pipeline then reads the relation its settings name and never changes it.
- A database migrated before checksums existed (its table was ``schema_migrations``) is adopted: its
  migrations stay applied and take the checksums of the files of the same name.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from importlib.resources.abc import Traversable
from typing import Any

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import SQL_DIR, compose, load_sql
from birthday_pipeline.ids import DB_CONN, MIGRATE_DAG
from birthday_pipeline.settings import Relation

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
TABLE = "birthday_schema_migrations"
# Any constant shared by every migrator of this schema; the value spells "bday".
_MIGRATION_LOCK_KEY = 0x62646179
DIRECTIVE = "-- birthday_pipeline:"
NO_TRANSACTION = f"{DIRECTIVE} no-transaction"
BUNDLED_USERS = f"{DIRECTIVE} bundled-users"
# The migration that creates the bundled users table; whether it ran decides whether the others do.
BUNDLED_USERS_TABLE = "0001_users.sql"
# How long a transactional migration may wait for a lock before it gives up (and changes nothing).
LOCK_TIMEOUT = "10s"
# How often a runner that waits for another's migration lock tries again.
LOCK_POLL_SECONDS = 0.5
_CONCURRENT_INDEX = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w.\"]+)", re.IGNORECASE
)
_LOCK_NOT_AVAILABLE, _UNDEFINED_TABLE = "55P03", "42P01"


class MigrationError(RuntimeError):
    """The database cannot be migrated as it is; the message says why and what to do."""


class ChangedMigrationError(MigrationError):
    """An applied migration's file changed since it ran: a defect of the code, not of the database."""


@dataclasses.dataclass(frozen=True)
class Migration:
    """One migration file as this code ships it."""

    name: str
    sql: str
    checksum: str  # sha256 of the file's text, hex
    no_transaction: bool
    bundled_users: bool

    @property
    def version(self) -> str:
        return version_of(self.name)


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One migration as the database recorded it."""

    name: str
    checksum: str | None  # None: recorded before checksums existed, not adopted yet
    skipped: str | None  # why it was skipped; None when it ran
    applied_at: datetime


@dataclasses.dataclass(frozen=True)
class Status:
    """Where a database stands against the migrations this code ships."""

    recorded: list[Recorded]
    pending: list[Migration]
    changed: list[str]  # recorded with a checksum other than the file's
    unknown: list[str]  # recorded, but not shipped by this code (a newer version applied them)
    legacy: bool  # recorded by the runner from before checksums; the next apply adopts them

    @property
    def version(self) -> str | None:
        """The highest migration number recorded, or None for a database never migrated."""
        return max((version_of(row.name) for row in self.recorded), default=None)


def version_of(name: str) -> str:
    """The number a migration file's name starts with: ``0021`` of ``0021_users_hired_on_month_day_index.sql``."""
    return name.split("_", 1)[0]


def shipped_migrations(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file of ``directory``, in the order they run."""
    migrations = []
    for path in sorted((path for path in directory.iterdir() if path.name.endswith(".sql")), key=lambda p: p.name):
        text = path.read_text(encoding="utf-8")
        directives = _directives(text)
        unknown = directives - {NO_TRANSACTION, BUNDLED_USERS}
        if unknown:
            raise MigrationError(f"{path.name}: unknown directive {sorted(unknown)}")
        migrations.append(Migration(path.name, text, hashlib.sha256(text.encode("utf-8")).hexdigest(),
                                    NO_TRANSACTION in directives, BUNDLED_USERS in directives))
    return migrations


def _directives(text: str) -> set[str]:
    """The ``-- birthday_pipeline: ...`` lines at the head of a file, before any other line."""
    directives = set()
    for line in text.splitlines():
        if not line.startswith(DIRECTIVE):
            break
        directives.add(line.strip())
    return directives


def needed_version(directory: Traversable = MIGRATIONS_DIR) -> str:
    """The highest migration number this code ships: the version it needs."""
    return shipped_migrations(directory)[-1].version


def pending_migrations(applied: set[str]) -> list[str]:
    """Names of the migration files not yet in ``applied``, in the order they must run."""
    return [migration.name for migration in shipped_migrations() if migration.name not in applied]


# --- the runner --------------------------------------------------------------------------------------------


def apply_migrations(conn: Any, directory: Traversable = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration through a DB-API connection (psycopg or psycopg2); return the names run.

    Skipped bundled-users migrations are recorded and logged, not returned.
    """
    migrations = shipped_migrations(directory)
    with _autocommit(conn), dict_cursor(conn) as cursor, _migration_lock(cursor):
        _prepare_table(cursor, migrations)
        recorded = {row.name: row for row in _recorded(cursor, legacy=False)}
        _refuse_changed(_changed(recorded, migrations))
        ran = []
        for migration in migrations:
            if migration.name in recorded:
                continue
            skipped = _skip_reason(cursor, migration, recorded)
            if skipped is not None:
                recorded[migration.name] = _record(cursor, migration, skipped)
                log.info("Skipped migration %s: %s", migration.name, skipped)
            else:
                started = time.monotonic()
                if migration.no_transaction:
                    recorded[migration.name] = _run_outside_transaction(cursor, migration)
                else:
                    recorded[migration.name] = _run_in_transaction(cursor, migration)
                ran.append(migration.name)
                log.info("Applied migration %s in %.2f s", migration.name, time.monotonic() - started)
    return ran


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


def _prepare_table(cursor: Any, migrations: list[Migration]) -> None:
    """Create the table of migrations, or adopt the one from before checksums and its rows."""
    with _transaction(cursor):
        if not _exists(cursor, TABLE):
            cursor.execute(load_sql("schema/legacy_table"))
            if cursor.fetchone()["ours"]:
                cursor.execute(load_sql("schema/adopt_legacy_table"))
                log.info("Adopted the migrations recorded in schema_migrations before checksums existed")
            else:
                cursor.execute(load_sql("schema/create_table"))
        cursor.execute(load_sql("schema/adopt_checksums"),
                       {"names": [m.name for m in migrations], "checksums": [m.checksum for m in migrations]})


def _recorded(cursor: Any, *, legacy: bool) -> list[Recorded]:
    cursor.execute(load_sql("schema/legacy_applied" if legacy else "schema/applied"))
    return [_as_recorded(row) for row in cursor.fetchall()]


def _as_recorded(row: dict[str, Any]) -> Recorded:
    return Recorded(row["name"], row["checksum"], row["skipped"], row["applied_at"])


def _changed(recorded: dict[str, Recorded], migrations: list[Migration]) -> list[str]:
    return [m.name for m in migrations
            if m.name in recorded and recorded[m.name].checksum not in (None, m.checksum)]


def _refuse_changed(changed: list[str]) -> None:
    if changed:
        files = ", ".join(changed)
        raise ChangedMigrationError(
            f"migration {files} changed after it was applied to this database (its sha256 differs from the one "
            f"recorded in {TABLE}); nothing was applied. An applied migration must never change: restore the file "
            f"as it was (git log -p -- include/sql/migrations/{changed[0]}) and put the change in a new migration."
        )


def _skip_reason(cursor: Any, migration: Migration, recorded: dict[str, Recorded]) -> str | None:
    """Why a bundled-users migration must not run here, or None when it may (and for every other migration)."""
    if not migration.bundled_users:
        return None
    users_exists = _exists(cursor, "users")
    if migration.name == BUNDLED_USERS_TABLE:
        return "a relation users exists already: the application's own, left as it is" if users_exists else None
    creator = recorded.get(BUNDLED_USERS_TABLE)
    if creator is None or creator.skipped is not None:
        return f"users is not the bundled table (migration {BUNDLED_USERS_TABLE} did not create it)"
    if not users_exists:
        return "there is no relation users: the bundled table was dropped"
    return None


def _run_in_transaction(cursor: Any, migration: Migration) -> Recorded:
    try:
        with _transaction(cursor):
            cursor.execute(load_sql("schema/set_lock_timeout"), {"lock_timeout": LOCK_TIMEOUT})
            cursor.execute(migration.sql)
            return _record(cursor, migration, None)
    except Exception as error:
        if _sqlstate(error) == _LOCK_NOT_AVAILABLE:
            raise MigrationError(
                f"migration {migration.name} waited more than {LOCK_TIMEOUT} for a lock on a table in use and was "
                "rolled back; nothing of it was applied. Run the migration again, at a quieter moment if it recurs."
            ) from error
        raise


def _run_outside_transaction(cursor: Any, migration: Migration) -> Recorded:
    """Run a no-transaction migration; an index it builds concurrently must end valid, whatever came before."""
    match = _CONCURRENT_INDEX.search(migration.sql)
    index = match["name"] if match else None
    if index is not None and _index_valid(cursor, index) is False:
        log.warning("Index %s is INVALID (an earlier concurrent build failed); dropping it to build it again", index)
        name = tuple(part.strip('"') for part in index.split("."))
        cursor.execute(compose(cursor.connection, "schema/drop_index", index=[name]), {})
    cursor.execute(migration.sql)
    if index is not None and not _index_valid(cursor, index):
        raise MigrationError(f"migration {migration.name} left index {index} missing or INVALID; run it again")
    return _record(cursor, migration, None)


def _index_valid(cursor: Any, index: str) -> bool | None:
    cursor.execute(load_sql("schema/index_validity"), {"index": index})
    row = cursor.fetchone()
    return None if row is None else bool(row["valid"])


def _record(cursor: Any, migration: Migration, skipped: str | None) -> Recorded:
    cursor.execute(load_sql("schema/record"),
                   {"name": migration.name, "checksum": migration.checksum, "skipped": skipped})
    return _as_recorded(cursor.fetchone())


def _exists(cursor: Any, relation: str) -> bool:
    cursor.execute(load_sql("schema/relation_exists"), {"relation": relation})
    return bool(cursor.fetchone()["found"])


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a psycopg (``sqlstate``) or psycopg2 (``pgcode``) error."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


# --- where a database stands -------------------------------------------------------------------------------


def status(conn: Any, directory: Traversable = MIGRATIONS_DIR) -> Status:
    """The recorded, pending, changed and unknown migrations of the database of ``conn``; changes nothing."""
    migrations = shipped_migrations(directory)
    with dict_cursor(conn) as cursor:
        legacy = not _exists(cursor, TABLE) and _exists(cursor, "schema_migrations")
        if legacy:
            cursor.execute(load_sql("schema/legacy_table"))
            legacy = bool(cursor.fetchone()["ours"])
        recorded = _recorded(cursor, legacy=True) if legacy else (
            _recorded(cursor, legacy=False) if _exists(cursor, TABLE) else [])
    conn.rollback()
    by_name = {row.name: row for row in recorded}
    shipped = {m.name for m in migrations}
    return Status(
        recorded=recorded,
        pending=[m for m in migrations if m.name not in by_name],
        changed=_changed(by_name, migrations),
        unknown=[row.name for row in recorded if row.name not in shipped],
        legacy=legacy,
    )


# Every column the pipeline reads from the users relation, besides each occasion's date column.
USER_COLUMNS = ("id", "first_name", "last_name", "birthday", "timezone")
_INTEGER_TYPES = {"smallint", "integer", "bigint"}


def schema_problems(conn: Any, users_relation: Relation, date_columns: Sequence[str],
                    directory: Traversable = MIGRATIONS_DIR) -> list[str]:
    """What keeps this code from running on the database of ``conn``, in one cheap query; empty when nothing.

    ``users_relation`` is the relation users are read from, ``date_columns`` every occasion's date column.
    Each problem says what to do about it.
    """
    migrations = shipped_migrations(directory)
    needed = migrations[-1].version
    with dict_cursor(conn) as cursor:
        try:
            cursor.execute(load_sql("schema/check"), {"users_relation": users_relation.quoted()})
        except Exception as error:
            if _sqlstate(error) != _UNDEFINED_TABLE:
                raise
            conn.rollback()
            return [f"{DB_CONN} has no migrations of this pipeline (no table {TABLE}), this code needs {needed}: "
                    f"trigger {MIGRATE_DAG} (or run `python -m birthday_pipeline.schema.migrations apply`)"]
        found = cursor.fetchone()
    conn.rollback()
    problems = []
    recorded = dict(zip(found["names"], found["checksums"], strict=True))
    missing = [m.name for m in migrations if m.name not in recorded]
    if missing:
        at = max((version_of(name) for name in recorded), default="no migration")
        # A migration numbered below the newest applied one (added on a branch, say) leaves a gap, not a lag.
        where = f"is at {at}, this code needs {needed}" if at != needed else f"is at {at} but lacks older ones"
        problems.append(f"{DB_CONN} {where} (not applied: {', '.join(missing)}): trigger {MIGRATE_DAG}")
    changed = [m.name for m in migrations if recorded.get(m.name) not in (None, m.checksum)]
    if changed:
        problems.append(f"{DB_CONN} applied {', '.join(changed)} from a file other than the one this code ships: "
                        "an applied migration must never change (see `python -m birthday_pipeline.schema.migrations status`)")
    problems.extend(_users_problems(users_relation, date_columns, found["users_found"], found["users_readable"],
                                    dict(zip(found["users_columns"], found["users_types"], strict=True))))
    return problems


def _users_problems(relation: Relation, date_columns: Sequence[str], found: bool, readable: bool,
                    types: dict[str, str]) -> list[str]:
    where = f"the users relation {relation} (users_relation in Variable birthday_settings)"
    if not found:
        return [f"{where} does not exist in {DB_CONN}, or is not on this role's search path; see docs/deploy.md"]
    problems = []
    if not readable:
        problems.append(f"{where} may not be read by this role: GRANT SELECT on it (docs/deploy.md)")
    wanted = [*USER_COLUMNS, *(column for column in date_columns if column not in USER_COLUMNS)]
    missing = [column for column in wanted if column not in types]
    if missing:
        problems.append(f"{where} has no column {', '.join(missing)}; the pipeline reads {', '.join(wanted)}: "
                        "write a view that names them (docs/deploy.md)")
    wrong = [f"{column} is {types[column]}, not date" for column in ("birthday", *date_columns)
             if column in types and types[column] != "date"]
    if "id" in types and types["id"] not in _INTEGER_TYPES:
        wrong.append(f"id is {types['id']}, not an integer")
    if wrong:
        problems.append(f"in {where}, {'; '.join(dict.fromkeys(wrong))}: cast it in the view (docs/deploy.md)")
    return problems


# --- the command line --------------------------------------------------------------------------------------


def describe(current: Status, directory: Traversable = MIGRATIONS_DIR) -> list[str]:
    """Lines for a person: the version, then every migration with its state."""
    needed = needed_version(directory)
    lines = [f"database at {current.version or 'no migration'}, this code needs {needed}"
             + (" (recorded before checksums: the next apply adopts them)" if current.legacy else "")]
    changed, unknown = set(current.changed), set(current.unknown)
    for row in current.recorded:
        state = "changed" if row.name in changed else "unknown" if row.name in unknown else (
            "skipped" if row.skipped else "applied")
        detail = {"changed": "the file differs from the one applied: refused",
                  "unknown": "applied, but not shipped by this code",
                  "skipped": row.skipped or ""}.get(state, "")
        lines.append(f"{state:<8} {row.name:<52} {row.applied_at:%Y-%m-%d %H:%M:%S %Z}  {detail}".rstrip())
    lines += [f"{'pending':<8} {migration.name}" for migration in current.pending]
    return lines


def migrate_connection(conn_id: str, *, apply: bool) -> tuple[Status, list[str]]:
    """Apply (or, without ``apply``, only read) the migrations of the database of Airflow connection ``conn_id``.

    Returns the status before applying and the names run.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    with closing(PostgresHook(postgres_conn_id=conn_id).get_conn()) as conn:
        before = status(conn)
        ran = apply_migrations(conn) if apply else []
    return before, ran


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m birthday_pipeline.schema.migrations {status,apply} [--conn-id birthday_db]``; prints to stdout."""
    parser = argparse.ArgumentParser(prog="birthday-pipeline-migrate",
                                     description="List or apply the birthday pipeline's migrations on the database "
                                                 "an Airflow connection names.")
    parser.add_argument("command", choices=["status", "apply"], help="status: list applied and pending; apply: run")
    parser.add_argument("--conn-id", default=DB_CONN,
                        help="the Airflow connection (AIRFLOW_CONN_<ID>, a secrets backend or the metadata database)")
    arguments = parser.parse_args(argv)
    try:
        before, ran = migrate_connection(arguments.conn_id, apply=arguments.command == "apply")
    except MigrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(describe(before)))
    if arguments.command == "apply":
        print(f"{len(ran)} migrations applied" + (f": {', '.join(ran)}" if ran else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
