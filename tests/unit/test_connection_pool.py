"""The page's connection pool with stand-in connections: bounded, reused, and rid of the broken ones."""

from __future__ import annotations

import threading
from typing import Any

import psycopg2
import pytest

from birthday_pipeline.db.pool import ConnectionPool, PoolExhausted


class FakeConnection:
    """Counts rollbacks; ``ended`` makes the next query or rollback fail as a connection the server ended."""

    def __init__(self, number: int) -> None:
        self.number, self.closed, self.ended, self.rollbacks = number, False, False, 0

    def cursor(self) -> Any:
        connection = self

        class Cursor:
            def __enter__(self) -> Cursor:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def execute(self, statement: str) -> None:
                if connection.ended:
                    raise psycopg2.OperationalError("terminating connection due to administrator command")

        return Cursor()

    def rollback(self) -> None:
        if self.ended:
            raise psycopg2.InterfaceError("connection already closed")
        self.rollbacks += 1

    def close(self) -> None:
        self.closed = True


def pool_of(max_size: int, timeout: float = 0.2) -> tuple[ConnectionPool, list[FakeConnection]]:
    opened: list[FakeConnection] = []

    def connect() -> FakeConnection:
        opened.append(FakeConnection(len(opened) + 1))
        return opened[-1]

    return ConnectionPool(connect, max_size, timeout), opened


def test_a_connection_given_back_is_rolled_back_and_lent_again() -> None:
    pool, opened = pool_of(2)
    for _ in range(5):
        conn = pool.take()
        pool.give_back(conn)
    assert [conn.number for conn in opened] == [1]
    assert opened[0].rollbacks >= 5 and not opened[0].closed


def test_no_more_than_max_size_are_open_and_a_waiting_caller_gets_the_one_given_back() -> None:
    pool, opened = pool_of(2, timeout=5)
    first, second = pool.take(), pool.take()
    threading.Timer(0.1, pool.give_back, (first,)).start()
    assert pool.take() is first
    assert len(opened) == 2
    pool.give_back(second)


def test_waiting_longer_than_the_timeout_raises() -> None:
    pool, _ = pool_of(1, timeout=0.1)
    pool.take()
    with pytest.raises(PoolExhausted, match="all 1 database connections stayed in use for 0.1 s"):
        pool.take()


def test_a_connection_the_server_ended_is_discarded_when_taken_or_given_back() -> None:
    pool, opened = pool_of(1)
    conn = pool.take()
    pool.give_back(conn)
    conn.ended = True  # while idle
    replacement = pool.take()
    assert replacement is not conn and conn.closed
    replacement.ended = True  # while lent
    pool.give_back(replacement)
    assert replacement.closed
    assert pool.take().number == 3  # the places of both were freed
