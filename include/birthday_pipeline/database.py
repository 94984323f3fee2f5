"""Cursors whose rows are read by name, whichever PostgreSQL driver the connection comes from.

Tasks get psycopg (3) connections from ``PostgresHook``; tools and tests use psycopg2. Both drivers have row
factories that key each row by column name; ``dict_cursor`` picks the one of the connection's driver.
"""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg2.extras
from psycopg.rows import dict_row


def dict_cursor(conn: Any) -> Any:
    """A cursor of ``conn`` that returns each row as a dict keyed by column name."""
    if isinstance(conn, psycopg.Connection):
        return conn.cursor(row_factory=dict_row)
    return conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
