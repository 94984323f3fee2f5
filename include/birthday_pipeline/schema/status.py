"""Where a database stands against the migrations this code ships: recorded, pending, changed, unknown.

Reads only; the runner (``runner``) uses the same reads under its lock. ``describe`` turns a status into the
lines the ``birthday_migrate`` task log and ``python -m birthday_pipeline.schema status`` print.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from importlib.resources.abc import Traversable
from typing import Any

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.schema.files import (
    MIGRATIONS_DIR,
    TABLE,
    Migration,
    changed_migrations,
    shipped_migrations,
    version_of,
)


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One migration as the database recorded it."""

    name: str
    checksum: str | None
    skipped: str | None  # why it was skipped; None when it ran
    applied_at: datetime


@dataclasses.dataclass(frozen=True)
class Status:
    """Where a database stands against the migrations this code ships."""

    recorded: list[Recorded]
    pending: list[Migration]
    changed: list[str]  # recorded with a checksum other than the file's
    unknown: list[str]  # recorded, but not shipped by this code (a newer version applied them)

    @property
    def version(self) -> str | None:
        """The highest migration number recorded, or None for a database never migrated."""
        return max((version_of(row.name) for row in self.recorded), default=None)


def relation_exists(cursor: Any, relation: str) -> bool:
    """Whether a relation of this name is visible on the search path of ``cursor``'s session."""
    cursor.execute(load_sql("schema/relation_exists"), {"relation": relation})
    return bool(cursor.fetchone()["found"])


def read_recorded(cursor: Any) -> list[Recorded]:
    """Every migration recorded in the database of ``cursor`` (a ``dict_cursor``), in name order."""
    if not relation_exists(cursor, TABLE):
        return []
    cursor.execute(load_sql("schema/applied"))
    return [as_recorded(row) for row in cursor.fetchall()]


def as_recorded(row: dict[str, Any]) -> Recorded:
    return Recorded(row["name"], row["checksum"], row["skipped"], row["applied_at"])


def status(conn: Any, directory: Traversable = MIGRATIONS_DIR) -> Status:
    """The recorded, pending, changed and unknown migrations of the database of ``conn``; changes nothing."""
    migrations = shipped_migrations(directory)
    with dict_cursor(conn) as cursor:
        recorded = read_recorded(cursor)
    conn.rollback()
    checksums = {row.name: row.checksum for row in recorded}
    shipped = {m.name for m in migrations}
    return Status(
        recorded=recorded,
        pending=[m for m in migrations if m.name not in checksums],
        changed=changed_migrations(checksums, migrations),
        unknown=[row.name for row in recorded if row.name not in shipped],
    )


def describe(current: Status, directory: Traversable = MIGRATIONS_DIR, *, conn_id: str) -> list[str]:
    """Lines for a person: where the database of connection ``conn_id`` stands, then every migration's state."""
    needed = shipped_migrations(directory)[-1].version
    where = f"is at {current.version}" if current.version else "has no migration of this pipeline"
    lines = [f"{conn_id} {where}, this code needs {needed}"]
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
