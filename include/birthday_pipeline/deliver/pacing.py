"""Pacing: requests to one endpoint spaced ``1 / max_requests_per_second`` apart across every task.

The next free slot of each endpoint lives in the ``send_pacing`` table, keyed by the SHA-256 of the
endpoint (its URL may carry credentials; a hash is enough to tell endpoints apart and keeps them out of the
database). A task reserves a few slots per round trip (about a fifth of a second's worth), and only when it is
about to use them: its requests pass one at a time, each at its slot, so a task never holds more than one
round trip's slots ahead, and concurrent tasks on any worker interleave their requests instead of adding
their rates up. Reserved slots are contiguous and never overlap.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from birthday_pipeline.db.connections import ReopeningConnection, dict_cursor
from birthday_pipeline.db.statements import load_sql


def waits_until(instant: datetime, clock: Callable[[], datetime]) -> Iterator[float]:
    """The sleeps (seconds) that bring ``clock()`` to ``instant``: each the time still left, asked of the clock
    again after the previous one, since a sleep may end early. None once ``instant`` has come.

    The one definition of the wait: ``sleep_until`` sleeps it on the event loop, a send task's wait for its
    batch's instant (``delivery.deliver_batch``) in its thread.
    """
    while (remaining := (instant - clock()).total_seconds()) > 0:
        yield remaining


async def sleep_until(instant: datetime, clock: Callable[[], datetime]) -> None:
    """Sleep until ``clock()`` reaches ``instant``, without blocking the event loop."""
    for wait in waits_until(instant, clock):
        await asyncio.sleep(wait)


def endpoint_key(endpoint: str) -> str:
    """How ``send_pacing`` names an endpoint: the hex SHA-256 of its URL, never the URL itself."""
    return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()


class SendPacer:
    """Hands out this task's send slots for one endpoint, reserving them in ``send_pacing`` as it goes.

    The reservations run on ``database`` (the task's own connection, reopened if the server goes away) in a
    worker thread, so the event loop keeps serving the requests in flight meanwhile.
    """

    def __init__(self, database: ReopeningConnection, endpoint: str, per_second: int, requests: int,
                 clock: Callable[[], datetime]) -> None:
        self._database = database
        self._key = endpoint_key(endpoint)
        self._interval = timedelta(seconds=1 / per_second)
        self._chunk = max(1, per_second // 5)
        self._unreserved = requests
        self._clock = clock
        self._slots: deque[datetime] = deque()
        self._lock = asyncio.Lock()

    async def wait_turn(self, may_start: Callable[[], None]) -> None:
        """Wait for this task's next slot; each caller gets one, in turn (the requests themselves overlap).

        ``may_start`` is asked first, in turn: once it raises, callers waiting in the queue leave at once.
        """
        async with self._lock:
            may_start()
            if not self._slots:
                count = max(1, min(self._chunk, self._unreserved))
                first = await asyncio.to_thread(self._database.run, lambda conn: self._reserve(conn, count),
                                                "reserving send slots")
                self._unreserved -= count
                self._slots.extend(first + index * self._interval for index in range(count))
            await sleep_until(self._slots.popleft(), self._clock)

    def _reserve(self, conn: Any, count: int) -> datetime:
        with dict_cursor(conn) as cursor:
            cursor.execute(
                load_sql("deliver/reserve_send_slots"),
                {"endpoint_sha256": self._key, "now": self._clock(), "count": count, "interval": self._interval},
            )
            return cursor.fetchone()["first_slot"]
