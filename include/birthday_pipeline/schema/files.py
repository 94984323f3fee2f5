"""The migration files this code ships (``include/sql/migrations/``): their order, checksums and directives.

- Files run once each, in name order; numbers may have gaps, and a file merged later with a lower number
  than one already applied still runs.
- A file's leading comment lines may hold directives for the runner, ``-- birthday_pipeline: <name> [key=value]``:

  ``no-transaction index=NAME``
      the file holds one statement that cannot run in a transaction, ``CREATE INDEX CONCURRENTLY`` (which
      builds an index without blocking writes), and names the index it builds: the runner checks that index
      before (an INVALID one, left by a failed build, is dropped and built again) and after (it must be valid).
  ``no-transaction drops-index=NAME``
      the file drops that index ``CONCURRENTLY``; the runner checks it is gone afterwards.
  ``bundled-users``
      the file migrates the bundled ``users`` table (0001 creates it); where a relation ``users`` existed
      before 0001 (a team's own), every such file is recorded as skipped.

  A no-transaction file without ``index=`` or ``drops-index=`` is refused: the runner never guesses the name.
- A file's checksum is the sha256 of its text with the ``key=value`` options of its directive lines left out:
  naming the index tells the runner what to check, not what to run, and the checksums 0.3.0 recorded (when
  the name was not written out) stay valid.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from importlib.resources.abc import Traversable

from birthday_pipeline.db.statements import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"
# The table of the migrations recorded in a database; named for the pipeline, so that it never meets the
# schema_migrations table of a Rails (or other) application.
TABLE = "birthday_schema_migrations"
DIRECTIVE = "-- birthday_pipeline:"
NO_TRANSACTION = "no-transaction"
BUNDLED_USERS = "bundled-users"
# The options a directive may carry, by directive.
_OPTIONS = {NO_TRANSACTION: {"index", "drops-index"}, BUNDLED_USERS: set()}
# The migration that creates the bundled users table; whether it ran decides whether the others do.
BUNDLED_USERS_TABLE = "0001_users.sql"


class MigrationError(RuntimeError):
    """The database cannot be migrated as it is, or a file is malformed; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Migration:
    """One migration file as this code ships it."""

    name: str
    sql: str
    checksum: str  # sha256 of the file's text without its directives' options, hex
    no_transaction: bool
    bundled_users: bool
    index: str | None = None  # the index a no-transaction file builds
    drops_index: str | None = None  # the index a no-transaction file drops

    @property
    def version(self) -> str:
        return version_of(self.name)


def version_of(name: str) -> str:
    """The number a migration file's name starts with: ``0021`` of ``0021_users_hired_on_month_day_index.sql``."""
    return name.split("_", 1)[0]


def shipped_migrations(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file of ``directory``, in the order they run; a malformed directive raises MigrationError."""
    paths = sorted((path for path in directory.iterdir() if path.name.endswith(".sql")), key=lambda p: p.name)
    return [_read(path.name, path.read_text(encoding="utf-8")) for path in paths]


def _read(name: str, text: str) -> Migration:
    directives: dict[str, dict[str, str]] = {}
    checksummed = []
    lines = text.splitlines(keepends=True)
    head = len(lines)
    for number, line in enumerate(lines):
        if not line.startswith(DIRECTIVE):
            head = number
            break
        body = line.rstrip("\r\n")
        words = body[len(DIRECTIVE):].split()
        directive = words[0] if words else ""
        if directive not in _OPTIONS:
            raise MigrationError(f"{name}: unknown directive {body.strip()!r}")
        options = dict(word.partition("=")[::2] for word in words[1:])
        unknown = sorted(set(options) - _OPTIONS[directive])
        if unknown or not all(options.values()):
            raise MigrationError(f"{name}: directive {body.strip()!r} takes only "
                                 f"{', '.join(f'{key}=NAME' for key in sorted(_OPTIONS[directive])) or 'no option'}")
        directives[directive] = options
        checksummed.append(f"{DIRECTIVE} {directive}{line[len(body):]}")
    checksummed += lines[head:]
    options = directives.get(NO_TRANSACTION, {})
    if NO_TRANSACTION in directives and len(options) != 1:
        raise MigrationError(
            f"{name}: a no-transaction migration names the one index it builds or drops, so that the runner can "
            f"check it: `{DIRECTIVE} {NO_TRANSACTION} index=NAME` (CREATE INDEX CONCURRENTLY) or "
            f"`{DIRECTIVE} {NO_TRANSACTION} drops-index=NAME` (DROP INDEX CONCURRENTLY)")
    return Migration(name, text, hashlib.sha256("".join(checksummed).encode("utf-8")).hexdigest(),
                     NO_TRANSACTION in directives, BUNDLED_USERS in directives,
                     options.get("index"), options.get("drops-index"))


def needed_version(directory: Traversable = MIGRATIONS_DIR) -> str:
    """The highest migration number this code ships: the version it needs."""
    return shipped_migrations(directory)[-1].version


def pending_migrations(applied: Iterable[str], directory: Traversable = MIGRATIONS_DIR) -> list[str]:
    """Names of the migration files not yet in ``applied``, in the order they must run."""
    applied = set(applied)
    return [migration.name for migration in shipped_migrations(directory) if migration.name not in applied]


def changed_migrations(checksums: Mapping[str, str | None], migrations: Iterable[Migration]) -> list[str]:
    """The migrations recorded (name to checksum) with a checksum other than their file's."""
    return [m.name for m in migrations if m.name in checksums and checksums[m.name] != m.checksum]
