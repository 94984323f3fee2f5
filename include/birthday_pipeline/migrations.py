"""Apply the SQL migrations in ``include/sql/migrations/`` once each, in file-name order.

Each file runs in its own transaction together with its entry in ``schema_migrations``, under an advisory
lock, so concurrent callers (``make migrate``, ``make run``, test fixtures) apply each file exactly once.
A file whose first line is ``-- birthday_pipeline: no-transaction`` holds a single statement that cannot run
in a transaction (``CREATE INDEX CONCURRENTLY``, which builds an index without blocking writes to its table);
it runs on its own, and its entry is recorded once it has succeeded.
"""

from __future__ import annotations

import logging
from typing import Any

from birthday_pipeline.statements import SQL_DIR

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
# Any constant shared by every migrator of this schema; the value spells "bday".
_MIGRATION_LOCK_KEY = 0x62646179
NO_TRANSACTION = "-- birthday_pipeline: no-transaction"


def pending_migrations(applied: set[str]) -> list[str]:
    """Names of the migration files not yet in ``applied``, in the order they must run."""
    names = (path.name for path in MIGRATIONS_DIR.iterdir() if path.name.endswith(".sql"))
    return sorted(name for name in names if name not in applied)


def apply_migrations(conn: Any) -> list[str]:
    """Apply every pending migration through a DB-API connection; return the names applied."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%(key)s)", {"key": _MIGRATION_LOCK_KEY})
        try:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            cursor.execute("SELECT name FROM schema_migrations")
            names = pending_migrations({row[0] for row in cursor.fetchall()})
            for name in names:
                statements = (MIGRATIONS_DIR / name).read_text(encoding="utf-8")
                if statements.startswith(NO_TRANSACTION):
                    conn.commit()
                    conn.autocommit = True
                    try:
                        cursor.execute(statements)
                    finally:
                        conn.autocommit = False
                else:
                    cursor.execute(statements)
                cursor.execute("INSERT INTO schema_migrations (name) VALUES (%(name)s)", {"name": name})
                conn.commit()
                log.info("Applied migration %s", name)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": _MIGRATION_LOCK_KEY})
            conn.commit()
    return names
