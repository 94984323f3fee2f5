"""Cursors whose rows are read by name, whichever PostgreSQL driver the connection comes from.

Tasks get their connections from ``PostgresHook``: psycopg (3) where it is installed (the postgres provider
requires it from 7.0; before, it was an extra the platform may not have) and SQLAlchemy is 2, psycopg2
otherwise; tools and tests use psycopg2. The pipeline works with either, and never installs psycopg 3 itself:
its presence switches the hook's driver for every DAG of the deployment.
"""

from __future__ import annotations

from typing import Any

import psycopg2
import psycopg2.extras

try:
    import psycopg
    from psycopg.rows import dict_row
except ImportError:  # a postgres provider before 7.0 without its psycopg extra
    psycopg = None

# The errors of a connection whose server went away, under either driver.
CONNECTION_LOST: tuple[type[BaseException], ...] = (psycopg2.OperationalError, psycopg2.InterfaceError) + (
    (psycopg.OperationalError, psycopg.InterfaceError) if psycopg is not None else ())


def is_psycopg3(connection_or_cursor: Any) -> bool:
    """Whether ``connection_or_cursor`` is psycopg 3's (which can stream a result) rather than psycopg2's."""
    return psycopg is not None and isinstance(connection_or_cursor, psycopg.Connection | psycopg.Cursor)


def dict_cursor(conn: Any) -> Any:
    """A cursor of ``conn`` that returns each row as a dict keyed by column name."""
    if is_psycopg3(conn):
        return conn.cursor(row_factory=dict_row)
    return conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
