"""The one loader of the SQL statements kept under ``include/sql/`` (package data ``birthday_pipeline.sql``)."""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

# include/sql/ in a checkout, birthday_pipeline/sql/ in the installed wheel: the same package either way.
SQL_DIR: Traversable = resources.files("birthday_pipeline.sql")

# A ``{shared/<name>}`` placeholder in a statement stands for the SQL of ``include/sql/shared/<name>.sql``: a
# piece several statements share (the condition that makes a notification due), kept in one file.
_FRAGMENT = re.compile(r"\{(shared/[a-z_]+)\}")


@functools.cache
def load_sql(name: str) -> str:
    """The text of ``include/sql/<name>.sql``, e.g. ``load_sql("plan/release_batches")``, with each
    ``{shared/<fragment>}`` placeholder replaced by that fragment.

    A fragment is one of our own SQL files, never data: it is inlined as text, keeps its ``%(name)s``
    parameters (bound with the statement's) and may itself use fragments. Its leading ``--`` comment lines
    (what it is, for a reader of the file) are left out, and its lines take the indentation of the placeholder's.
    """
    text = SQL_DIR.joinpath(*f"{name}.sql".split("/")).read_text(encoding="utf-8")
    return _FRAGMENT.sub(_fragment, text)


def _fragment(match: re.Match[str]) -> str:
    """The fragment a ``{shared/<name>}`` placeholder names, indented as the placeholder's line is."""
    lines = load_sql(match[1]).strip().splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    before = match.string[match.string.rfind("\n", 0, match.start()) + 1:match.start()]
    indent = before[:len(before) - len(before.lstrip())]
    return f"\n{indent}".join(lines)


def compose(conn: Any, name: str, **identifiers: Sequence[tuple[str, ...]] | None) -> str:
    """``load_sql(name)`` (its shared fragments inlined already) with each ``{placeholder}`` replaced by a
    comma-separated list of quoted identifiers (``NULL`` for None: an optional column not configured), to be
    executed with a parameter mapping (an empty one when the statement binds nothing).

    Identifiers come from the occasion registry and the settings, never from data. Quoting uses the driver of
    ``conn`` (psycopg2 in tools and tests, psycopg 3 under Airflow's PostgresHook): both ship the same ``sql``
    module. Either driver reads the statement again for ``%(name)s`` placeholders when it binds the parameters,
    and a ``sql.Composed`` is turned into the same string first, so a ``%`` inside a quoted identifier (a table
    named ``team%users``) would be read as a placeholder: it is written ``%%`` here, which binding turns back
    into one ``%``.
    """
    driver = importlib.import_module(type(conn).__module__.split(".")[0] + ".sql")
    parts = {
        placeholder: driver.SQL("NULL") if names is None else driver.SQL(", ").join(
            driver.SQL(driver.Identifier(*qualified).as_string(conn).replace("%", "%%")) for qualified in names)
        for placeholder, names in identifiers.items()
    }
    return driver.SQL(load_sql(name)).format(**parts).as_string(conn)
