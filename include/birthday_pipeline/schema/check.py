"""The schema check of the first task of every DAG: is the database at the version this code needs, and does the
users relation have the columns (and types) the pipeline reads? One cheap query; every problem says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources.abc import Traversable
from typing import Any

from birthday_pipeline.db.connections import dict_cursor, sqlstate
from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.ids import MIGRATE_DAG
from birthday_pipeline.schema.files import MIGRATIONS_DIR, TABLE, changed_migrations, shipped_migrations, version_of
from birthday_pipeline.settings import Relation

# Every column the pipeline reads from the users relation, besides each occasion's date column.
USER_COLUMNS = ("id", "first_name", "last_name", "birthday", "timezone")
_INTEGER_TYPES = {"smallint", "integer", "bigint"}
_UNDEFINED_TABLE = "42P01"


def schema_problems(conn: Any, users_relation: Relation, date_columns: Sequence[str],
                    directory: Traversable = MIGRATIONS_DIR, *, conn_id: str, locale_column: str | None = None,
                    opt_out_column: str | None = None) -> list[str]:
    """What keeps this code from running on the database of ``conn``, in one cheap query; empty when nothing.

    ``users_relation`` is the relation users are read from, ``date_columns`` every occasion's date column,
    ``locale_column`` and ``opt_out_column`` the optional columns the settings name (the opt-out one must be
    boolean), ``conn_id`` the Airflow connection ``conn`` came from, which the problems name. Each says what to
    do.
    """
    migrations = shipped_migrations(directory)
    needed = migrations[-1].version
    apply = f"python -m birthday_pipeline.schema apply --conn-id {conn_id}"
    with dict_cursor(conn) as cursor:
        try:
            cursor.execute(load_sql("schema/check"), {"users_relation": users_relation.quoted()})
        except Exception as error:
            if sqlstate(error) != _UNDEFINED_TABLE:
                raise
            conn.rollback()
            return [f"{conn_id} has no migrations of this pipeline (no table {TABLE}), this code needs {needed}: "
                    f"trigger {MIGRATE_DAG} (or run `{apply}`)"]
        found = cursor.fetchone()
    conn.rollback()
    problems = []
    recorded = dict(zip(found["names"], found["checksums"], strict=True))
    missing = [m.name for m in migrations if m.name not in recorded]
    if missing:
        at = max((version_of(name) for name in recorded), default="no migration")
        # A migration numbered below the newest applied one (added on a branch, say) leaves a gap, not a lag.
        where = f"is at {at}, this code needs {needed}" if at != needed else f"is at {at} but lacks older ones"
        problems.append(f"{conn_id} {where} (not applied: {', '.join(missing)}): trigger {MIGRATE_DAG}")
    changed = changed_migrations(recorded, migrations)
    if changed:
        problems.append(f"{conn_id} applied {', '.join(changed)} from a file other than the one this code ships: "
                        f"an applied migration must never change (see `python -m birthday_pipeline.schema status "
                        f"--conn-id {conn_id}`)")
    types = dict(zip(found["users_columns"], found["users_types"], strict=True))
    problems.extend(_users_problems(users_relation, date_columns, found["users_found"], found["users_readable"],
                                    types, conn_id))
    if found["users_found"]:
        problems.extend(_optional_column_problems(users_relation, types, locale_column, opt_out_column))
    return problems


def _users_problems(relation: Relation, date_columns: Sequence[str], found: bool, readable: bool,
                    types: dict[str, str], conn_id: str) -> list[str]:
    where = f"the users relation {relation} (users_relation in Variable birthday_settings)"
    if not found:
        return [f"{where} does not exist in {conn_id}, or is not on this role's search path; see docs/deploy.md"]
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


def _optional_column_problems(relation: Relation, types: dict[str, str], locale_column: str | None,
                              opt_out_column: str | None) -> list[str]:
    """The columns the settings ``locale_column`` and ``opt_out_column`` name: present, and the opt-out boolean."""
    problems = []
    for setting, column in (("locale_column", locale_column), ("opt_out_column", opt_out_column)):
        if column is not None and column not in types:
            problems.append(f"the users relation {relation} has no column {column}, which {setting} in Variable "
                            "birthday_settings names: add it, or remove the setting (README, Customise)")
    if opt_out_column is not None and opt_out_column in types and types[opt_out_column] != "boolean":
        problems.append(f"in the users relation {relation}, {opt_out_column} (opt_out_column) is "
                        f"{types[opt_out_column]}, not boolean: cast it in the view (README, Customise)")
    return problems
