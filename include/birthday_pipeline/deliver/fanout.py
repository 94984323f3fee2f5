"""The HTTP fan-out: POST claimed rows, their bodies rendered beforehand, at most ``max_in_flight`` at a time, none
before its instant, paced where a rate is set, and turn every answer into an ``Attempt`` the moment it is known.

Each attempt goes to ``on_attempt`` at once (the recorder writes it down). Before each request ``check()``
is asked whether sending may go on (the lease is alive, the recorder is healthy). Once anything raises,
outside the handling of one request's own failure, no new request starts; the requests in flight are let
finish and reported, and then the first error is raised.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import aiohttp

from birthday_pipeline.deliver.claims import ClaimedRow
from birthday_pipeline.deliver.pacing import SendPacer, sleep_until
from birthday_pipeline.deliver.redaction import describe_failure
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status
from birthday_pipeline.deliver.webhooks import (failure_reason, is_gone, is_retryable, is_success, request_headers,
                                                retry_after_delay)

TOO_MANY_REQUESTS = 429


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the endpoint answered: the status and its ``Retry-After`` header, if any."""

    status: int
    retry_after: str | None = None


# Sends one request (body, headers) and returns the reply; raises on transport failures.
Post = Callable[[bytes, dict[str, str]], Awaitable[Reply]]
OpenClient = Callable[[], AbstractAsyncContextManager[Post]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# Slots: a send task holds one per row of its batch from before its instant until the row is posted.
@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """A claimed row and its request body, rendered before the instant (its signature is not: it carries the time
    the request starts)."""

    row: ClaimedRow
    body: bytes


# Slots: the recorder holds one per outcome until its next flush.
@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    row: ClaimedRow
    started_at: datetime
    finished_at: datetime
    http_status: int | None
    error: str | None
    retryable: bool
    latency_ms: float
    retry_at: datetime | None  # when a retryable failure may be tried again

    @property
    def row_status(self) -> Status:
        """What the notification becomes: ``sent``; ``scheduled`` again after a 410 Gone (it waits for its
        endpoint to be enabled again: the endpoint is gone, not the message wrong); otherwise ``failed``."""
        if self.error is None:
            return Status.SENT
        return Status.SCHEDULED if is_gone(self.http_status) else Status.FAILED


class _Stopped(Exception):
    """This worker is not to start another request: another one failed."""


async def send_all(
    outgoing: Sequence[Outgoing],
    post: Post,
    settings: Settings,
    secret: str | None,
    clock: Clock,
    pacer: SendPacer | None,
    on_attempt: Callable[[Attempt], None],
    check: Callable[[], None],
    conn_id: str | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """POST ``outgoing`` in order with ``post``; every outcome goes to ``on_attempt``; raise the first error after
    the rest settle.

    ``conn_id`` is the connection ``post`` posts to: a request that gets no answer is recorded naming it.
    Once ``stopped()`` says so (the endpoint is gone, or its circuit breaker opened), no new request starts:
    the rows not sent are the caller's to hand back, and nothing is raised for them.
    """
    # A fixed pool of max_in_flight workers pulls rows in order: memory follows the pool, not the batch, where
    # one waiting coroutine per row would hold a frame for every row of a large batch at once.
    pending = iter(outgoing)
    errors: list[Exception] = []

    def may_start() -> None:
        if errors or stopped():
            raise _Stopped
        check()

    async def worker() -> None:
        for item in pending:
            try:
                on_attempt(await _send_one(item, post, secret, settings, clock, pacer, may_start, conn_id))
            except _Stopped:
                return
            except Exception as error:  # noqa: BLE001 - kept, and raised once the requests in flight settle
                errors.append(error)
                return

    await asyncio.gather(*(worker() for _ in range(min(settings.max_in_flight, len(outgoing)))))
    if errors:
        raise errors[0]


async def _send_one(
    item: Outgoing,
    post: Post,
    secret: str | None,
    settings: Settings,
    clock: Clock,
    pacer: SendPacer | None,
    may_start: Callable[[], None],
    conn_id: str | None,
) -> Attempt:
    row = item.row
    await sleep_until(row.send_at, clock)
    if pacer is not None:
        await pacer.wait_turn(may_start)
    may_start()
    started_at = clock()
    headers = request_headers(str(row.webhook_id), int(started_at.timestamp()), item.body, secret)
    started = time.perf_counter()
    try:
        reply = await post(item.body, headers)
    except (TimeoutError, OSError, aiohttp.ClientError) as error:
        finished_at = clock()
        message = describe_failure(error, conn_id)
        latency_ms = (time.perf_counter() - started) * 1000
        return Attempt(row, started_at, finished_at, None, message, True, latency_ms, finished_at)
    finished_at = clock()
    latency_ms = (time.perf_counter() - started) * 1000
    if is_success(reply.status):
        return Attempt(row, started_at, finished_at, reply.status, None, False, latency_ms, None)
    retryable = is_retryable(reply.status)
    retry_at = retry_at_after(reply, finished_at, settings) if retryable else None
    return Attempt(row, started_at, finished_at, reply.status, failure_reason(reply.status), retryable, latency_ms,
                   retry_at)


def retry_at_after(reply: Reply, finished_at: datetime, settings: Settings) -> datetime:
    """When a retryable failure may be tried again: at once, unless the endpoint asked for a pause.

    A 429 or a ``Retry-After`` header is honoured, but never shorter than ``retry_after_floor_seconds``
    (an endpoint that says "retry now" is not hammered) nor longer than the late window (after it the row
    expires anyway). An unreadable header counts as none.
    """
    late_window = timedelta(hours=settings.max_lateness_hours)
    asked_for = retry_after_delay(reply.retry_after, finished_at, longest=late_window)
    if reply.status != TOO_MANY_REQUESTS and asked_for is None:
        return finished_at
    return finished_at + max(timedelta(seconds=settings.retry_after_floor_seconds), asked_for or timedelta(0))
