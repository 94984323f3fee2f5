"""Database connections: cursors whose rows are read by name, and connections that reopen when the server goes.

Tasks get their connections from ``PostgresHook``: psycopg (3) where it is installed (the postgres provider
requires it from 7.0; before, it was an extra the platform may not have) and SQLAlchemy is 2, psycopg2
otherwise; tools and tests use psycopg2. The pipeline works with either, and never installs psycopg 3 itself:
its presence switches the hook's driver for every DAG of the deployment. Both drivers have row factories that
key each row by column name; ``dict_cursor`` picks the one of the connection's driver.
``ReopeningConnection`` is the connection of one thread of a send task (the recorder, the lease heartbeat,
the pacer): a lost server is waited for and the work done again on a new connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2
import psycopg2.extras

from birthday_pipeline.db.statements import load_sql

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg.types.datetime import DateLoader
except ImportError:  # a postgres provider before 7.0 without its psycopg extra
    psycopg = None
    DateLoader = object

# The errors of a connection whose server went away, under either driver. Both drivers class a transaction
# rolled back by the server (deadlock, serialization) as operational too: doing the work again on a new
# connection is right for those as well.
CONNECTION_LOST: tuple[type[BaseException], ...] = (psycopg2.OperationalError, psycopg2.InterfaceError) + (
    (psycopg.OperationalError, psycopg.InterfaceError) if psycopg is not None else ())


def is_psycopg3(connection_or_cursor: Any) -> bool:
    """Whether ``connection_or_cursor`` is psycopg 3's (which can stream a result) rather than psycopg2's."""
    return psycopg is not None and isinstance(connection_or_cursor, psycopg.Connection | psycopg.Cursor)


log = logging.getLogger(__name__)

T = TypeVar("T")

# How long work waits for a lost database to come back before it gives up.
RECONNECT_SECONDS = 60.0


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a psycopg (``sqlstate``) or psycopg2 (``pgcode``) error; None for any other error."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


def name_session(conn: Any, application_name: str) -> None:
    """Set the ``application_name`` of ``conn``'s session, so that ``pg_stat_activity`` tells its owner apart."""
    with conn.cursor() as cursor:
        cursor.execute(load_sql("schema/name_session"), {"application_name": application_name})
    conn.commit()


def dict_cursor(conn: Any) -> Any:
    """A cursor of ``conn`` that returns each row as a dict keyed by column name.

    A ``date`` no calendar date can stand for (``infinity``, before year 1, after 9999: PostgreSQL holds them,
    Python does not) is read as None, as if the date were missing, so that one odd row of a team's users
    relation never fails the fetch of every other row.
    """
    if is_psycopg3(conn):
        cursor = conn.cursor(row_factory=dict_row)
        cursor.adapters.register_loader("date", _DateOrNone)
        return cursor
    cursor = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
    psycopg2.extensions.register_type(_DATE_OR_NONE, cursor)
    return cursor


def _date_or_none(value: str | None, cursor: Any) -> Any:
    if value is None or value.endswith("infinity"):
        return None
    try:
        return psycopg2.extensions.DATE(value, cursor)
    except ValueError:
        return None


_DATE_OR_NONE = psycopg2.extensions.new_type(psycopg2.extensions.DATE.values, "DATE_OR_NONE", _date_or_none)


class _DateOrNone(DateLoader):  # type: ignore[misc, valid-type]
    """psycopg 3's date loader, with None for a date Python cannot hold."""

    def load(self, data: Any) -> Any:
        try:
            return super().load(data)
        except psycopg.DataError:
            return None


class ReopeningConnection:
    """One thread's connection, opened with ``connect`` when first needed and again after the server went away.

    ``run(work)`` calls ``work(conn)`` and commits. If the connection is lost, it is closed and the work is
    tried again on a new one every second, for up to ``patience`` seconds (the instance's, unless the call
    names its own); then the last error is raised. Work must therefore be safe to do twice (every write of a
    send task is guarded or idempotent). A connection passed in is borrowed: ``close()`` leaves it to its
    owner and closes only a connection opened here.
    """

    def __init__(self, connect: Callable[[], Any], conn: Any = None,
                 patience: float = RECONNECT_SECONDS, sleep: Callable[[float], None] = time.sleep) -> None:
        self._connect = connect
        self._conn = conn
        self._borrowed = conn
        self._patience = patience
        self._sleep = sleep

    def run(self, work: Callable[[Any], T], what: str, patience: float | None = None) -> T:
        deadline = time.monotonic() + (self._patience if patience is None else patience)
        failures = 0
        while True:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                result = work(self._conn)
                self._conn.commit()
                if failures:
                    log.info("Finished %s after reconnecting to the database", what)
                return result
            except CONNECTION_LOST as error:
                self._drop()
                failures += 1
                if time.monotonic() >= deadline:
                    raise
                log.warning("Lost the database while %s (%s: %s); trying again on a new connection",
                            what, type(error).__name__, _first_line(error))
                self._sleep(1.0)
            except BaseException:
                self._rollback()
                raise

    def close(self) -> None:
        """Close the connection opened here, if any; a borrowed one is left to its owner."""
        if self._conn is not self._borrowed:
            self._drop()
        self._conn = None

    def _drop(self) -> None:
        """Close the current connection, borrowed or not (it is lost, or ours)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except CONNECTION_LOST:
                pass  # already gone

    def _rollback(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            except CONNECTION_LOST:
                self._drop()
