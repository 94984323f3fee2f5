"""A small, bounded pool of database connections for a long-lived process: the Birthdays page on the API server.

Tasks open a connection per task and close it; a page request is too short for that, so the page takes a
connection from here and gives it back. The pool opens connections with the function it is given (the page's
``PostgresHook``, psycopg 3 or psycopg2 alike), lazily, at most ``max_size`` at once; a caller finding all of
them lent waits up to ``timeout`` seconds for one. A connection given back is rolled back (nothing a request
did stays open, no transaction is left idle) and kept; one whose rollback fails, or that is closed, is
discarded. A connection the server ended while it sat idle (a restart, ``pg_terminate_backend``, an idle
timeout) is found by a one-row query when it is taken, discarded, and replaced by another.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from birthday_pipeline.db.connections import CONNECTION_LOST
from birthday_pipeline.db.statements import load_sql

log = logging.getLogger(__name__)


class PoolExhausted(RuntimeError):
    """Every connection stayed lent for the whole wait."""


class ConnectionPool:
    """At most ``max_size`` connections opened by ``connect``, lent one at a time with ``take`` and ``give_back``."""

    def __init__(self, connect: Callable[[], Any], max_size: int, timeout: float) -> None:
        self._connect = connect
        self._max_size = max_size
        self._timeout = timeout
        self._idle: list[Any] = []
        self._open = 0  # idle and lent
        self._changed = threading.Condition()

    def take(self) -> Any:
        """A live connection, idle or newly opened; raises ``PoolExhausted`` after ``timeout`` seconds of waiting."""
        deadline = time.monotonic() + self._timeout
        while True:
            conn = self._reserve(deadline)
            if conn is None:
                return self._open_new()
            if self._alive(conn):
                return conn
            log.info("Discarded a pooled database connection the server had closed")
            self._discard(conn)

    def give_back(self, conn: Any) -> None:
        """Return ``conn`` rolled back to the idle connections, or discard it if it is broken."""
        healthy = False
        try:
            conn.rollback()
            healthy = not conn.closed
        except CONNECTION_LOST:
            pass  # the connection is lost: discarded below, and the next take opens another
        finally:
            if healthy:
                with self._changed:
                    self._idle.append(conn)
                    self._changed.notify()
            else:
                self._discard(conn)

    def _reserve(self, deadline: float) -> Any:
        """An idle connection, or None once a place for a new one is counted; waits while all are lent."""
        with self._changed:
            while not self._idle and self._open >= self._max_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolExhausted(f"all {self._max_size} database connections stayed in use for "
                                        f"{self._timeout:g} s")
                self._changed.wait(remaining)
            if self._idle:
                # The most recently used one: the others may stay idle long enough for the server to end them.
                return self._idle.pop()
            self._open += 1
            return None

    def _open_new(self) -> Any:
        try:
            return self._connect()
        except BaseException:
            self._forget_one()
            raise

    @staticmethod
    def _alive(conn: Any) -> bool:
        try:
            with conn.cursor() as cursor:
                cursor.execute(load_sql("schema/ping"))
            conn.rollback()
        except CONNECTION_LOST:
            return False
        return True

    def _discard(self, conn: Any) -> None:
        try:
            conn.close()
        except CONNECTION_LOST:
            pass  # already gone
        finally:
            self._forget_one()

    def _forget_one(self) -> None:
        with self._changed:
            self._open -= 1
            self._changed.notify()
