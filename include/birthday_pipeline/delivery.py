"""Deliver one batch: claim its due rows, re-check them against ``users``, POST them, record the outcome.

Claims are leases: a row moves to ``sending`` with this call's token, and every later update is guarded by
that token, so a stale or duplicated task cannot overwrite a newer claim. Nothing is posted before its
instant, whatever woke the caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, closing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp

from birthday_pipeline.database import CONNECTION_LOST, is_psycopg3
from birthday_pipeline.occasions import date_columns, occasion_named, occasion_names, source_dates
from birthday_pipeline.planning import INVALID, SCHEDULED, ReleaseBatch, User, plan_occasion
from birthday_pipeline.settings import Settings
from birthday_pipeline.statements import compose, load_sql
from birthday_pipeline.webhooks import (
    is_retryable,
    is_success,
    request_body,
    request_headers,
    retry_after_delay,
)

log = logging.getLogger(__name__)

CANCELLED = "cancelled"

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


@dataclasses.dataclass(frozen=True)
class TaskRef:
    """The Airflow task instance sending: recorded with each attempt so its log can be found."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int


# Slots: a send task holds one per row of its batch, so their size is the task's memory per row.
@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    user_id: int
    occasion: str
    occasion_date: date
    send_at: datetime
    webhook_id: uuid.UUID
    attempts: int
    first_name: str
    last_name: str
    timezone: str | None
    dates: tuple[date | None, ...]  # every occasion's date of the user, in ``occasions.date_columns()`` order

    @classmethod
    def from_claim(cls, row: tuple) -> ClaimedRow:
        """A row of deliver/claim.sql: the fixed columns, then ``occasions.date_columns()``.

        The occasion and the zone repeat across a batch: one shared string each instead of one per row.
        """
        (notification_id, user_id, occasion, occasion_date, send_at, webhook_id, attempts, first_name, last_name,
         timezone) = row[:10]
        return cls(notification_id, user_id, occasion_named(occasion).name, occasion_date, send_at, webhook_id,
                   attempts, first_name, last_name, None if timezone is None else sys.intern(timezone),
                   tuple(row[10:]))

    def user(self) -> User:
        dates = source_dates(self.dates)
        return User(self.user_id, dates["birthday"], self.timezone, self.first_name, self.last_name,
                    other_dates=dates)


# Slots: a send task holds one per row of its batch, so their size is the task's memory per row.
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


@dataclasses.dataclass(frozen=True)
class DeliverySummary:
    claimed: int
    sent: int
    failed: int
    skipped: int
    retryable_failures: list[tuple[int, str]]
    permanent_failures: list[tuple[int, str]]
    by_occasion: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)  # occasion -> sent, failed
    lateness_seconds: list[float] = dataclasses.field(default_factory=list)  # sent_at - send_at of each 2xx
    requests: int = 0  # HTTP requests made
    seconds: float = 0.0  # from the first request to the last answer


class RetryableDeliveryError(RuntimeError):
    """Some rows of the batch failed in a way a later try may fix; the others are recorded already."""


def deliver_batch(
    conn: Any,
    batch: ReleaseBatch,
    open_client: OpenClient,
    settings: Settings,
    secret: str | None,
    grace: timedelta = timedelta(0),
    clock: Clock = utc_now,
    endpoint: str = "",
    reconnect: Callable[[], Any] | None = None,
    task: TaskRef | None = None,
) -> DeliverySummary:
    """Deliver the due rows of ``batch`` (waiting for its instant first, if it has one).

    A scheduled row is claimed only once its instant is ``grace`` old: the sweep leaves healthy hourly
    releases a head start. With ``birthday_max_requests_per_second`` set, requests to ``endpoint`` are paced
    across every task sending to it. If the database goes away while the requests are out, the outcome is
    recorded through ``reconnect`` once it is back: the claim token still guards the rows.
    """
    if batch.send_at is not None:
        _sleep_until(batch.send_at, clock)
    claim_token = uuid.uuid4()
    with conn.cursor() as cursor:
        claim = compose(conn, "deliver/claim", date_columns=[("u", column) for column in date_columns()],
                        users=[settings.users_relation.parts])
        claimed = [ClaimedRow.from_claim(row)
                   for row in _rows_of(cursor, claim, _claim_parameters(batch, claim_token, settings, clock(), grace))]
    return deliver_claimed(conn, claimed, claim_token, open_client, settings, secret, clock, endpoint, reconnect,
                           task)


def _rows_of(cursor: Any, statement: str, parameters: dict) -> Iterator[tuple]:
    """The rows ``statement`` returns, one at a time where the driver can stream them.

    psycopg 3 (PostgresHook's driver) streams, so the whole raw result never sits in memory beside the
    objects built from it; psycopg2 fetches the result at once.
    """
    if is_psycopg3(cursor):
        yield from cursor.stream(statement, parameters)
    else:
        cursor.execute(statement, parameters)
        yield from cursor


def deliver_claimed(
    conn: Any,
    claimed: list[ClaimedRow],
    claim_token: uuid.UUID,
    open_client: OpenClient,
    settings: Settings,
    secret: str | None,
    clock: Clock = utc_now,
    endpoint: str = "",
    reconnect: Callable[[], Any] | None = None,
    task: TaskRef | None = None,
) -> DeliverySummary:
    """Re-check, send and record rows already claimed under ``claim_token`` (in the open transaction).

    The second half of ``deliver_batch``, shared with the resend DAG, which claims its rows its own way.
    """
    with conn.cursor() as cursor:
        to_send, to_release = _recheck(claimed, settings)
        if to_release:
            cursor.execute(load_sql("deliver/release_claims"), _release_parameters(to_release, claim_token))
    conn.commit()

    pacer = (
        SendPacer(conn, endpoint, settings.max_requests_per_second, len(to_send), clock)
        if settings.max_requests_per_second and to_send
        else None
    )
    attempts = asyncio.run(_send_all(to_send, open_client, settings, secret, clock, pacer)) if to_send else []

    if attempts:
        _record_attempts(conn, _record_parameters(attempts, claim_token, task), reconnect)
    failed = [attempt for attempt in attempts if attempt.error is not None]
    by_occasion: dict[str, dict[str, int]] = {}
    for attempt in attempts:
        outcome = by_occasion.setdefault(attempt.row.occasion, {"sent": 0, "failed": 0})
        outcome["failed" if attempt.error is not None else "sent"] += 1
    return DeliverySummary(
        claimed=len(claimed),
        sent=len(attempts) - len(failed),
        failed=len(failed),
        skipped=len(to_release),
        retryable_failures=[(attempt.row.id, attempt.error or "") for attempt in failed if attempt.retryable],
        permanent_failures=[(attempt.row.id, attempt.error or "") for attempt in failed if not attempt.retryable],
        by_occasion=by_occasion,
        # sent_at is the attempt's finished_at (deliver/record_attempts.sql).
        lateness_seconds=[(attempt.finished_at - attempt.row.send_at).total_seconds()
                          for attempt in attempts if attempt.error is None],
        requests=len(attempts),
        seconds=(max(attempt.finished_at for attempt in attempts)
                 - min(attempt.started_at for attempt in attempts)).total_seconds() if attempts else 0.0,
    )


# How long a batch waits for the database to come back before it gives up recording what it sent; the
# lease (and the sweep) take over after that, re-sending under the same webhook-ids.
RECORD_RETRY_SECONDS = 60


def _record_attempts(conn: Any, parameters: dict, reconnect: Callable[[], Any] | None) -> None:
    try:
        _execute_and_commit(conn, load_sql("deliver/record_attempts"), parameters)
    except CONNECTION_LOST:
        if reconnect is None:
            raise
        log.warning("Lost the database while recording %d attempts; reconnecting", len(parameters["ids"]))
        _record_after_reconnecting(reconnect, parameters)


def _record_after_reconnecting(reconnect: Callable[[], Any], parameters: dict) -> None:
    deadline = time.monotonic() + RECORD_RETRY_SECONDS
    while True:
        time.sleep(1)
        try:
            with closing(reconnect()) as fresh:
                _execute_and_commit(fresh, load_sql("deliver/record_attempts"), parameters)
        except CONNECTION_LOST:
            if time.monotonic() > deadline:
                raise
            continue
        log.info("Recorded %d attempts after reconnecting to the database", len(parameters["ids"]))
        return


def _execute_and_commit(conn: Any, statement: str, parameters: dict) -> None:
    with conn.cursor() as cursor:
        cursor.execute(statement, parameters)
    conn.commit()


def _sleep_until(instant: datetime, clock: Clock) -> None:
    while (remaining := (instant - clock()).total_seconds()) > 0:
        time.sleep(remaining)


def _claim_parameters(
    batch: ReleaseBatch, claim_token: uuid.UUID, settings: Settings, now: datetime, grace: timedelta
) -> dict:
    return {
        **due_parameters(settings, now, grace),
        "first_id": batch.first_id,
        "last_id": batch.last_id,
        "send_at": batch.send_at,
        "claim_token": str(claim_token),
    }


def due_parameters(settings: Settings, now: datetime, grace: timedelta) -> dict:
    """The parameters of the conditions that make a row due at ``now`` (shared with the sweep)."""
    return {
        "occasions": occasion_names(),
        "now": now,
        "scheduled_due_by": now - grace,
        "max_lateness": timedelta(hours=settings.max_lateness_hours),
        "lease": timedelta(seconds=settings.lease_seconds),
        "max_attempts": settings.max_attempts,
    }


def _recheck(claimed: list[ClaimedRow], settings: Settings) -> tuple[list[ClaimedRow], list[tuple]]:
    """Split claimed rows into those still due as planned and those to hand back (id, send_at, status, reason).

    The user may have changed the occasion's date or zone since planning: then the row is not sent at the old
    instant.
    """
    to_send, to_release = [], []
    for row in claimed:
        occasion = occasion_named(row.occasion)
        user = row.user()
        if user.date_for(occasion) is None:
            to_release.append((row.id, row.send_at, CANCELLED, f"{occasion.date_column} removed after planning"))
            continue
        _, planned = plan_occasion(user, row.occasion_date.year, settings, occasion)
        if planned.occasion_date != row.occasion_date:
            to_release.append((row.id, row.send_at, CANCELLED, f"{occasion.date_column} changed after planning"))
        elif planned.status == INVALID:
            to_release.append((row.id, None, INVALID, planned.reason))
        elif planned.send_at != row.send_at:
            to_release.append((row.id, planned.send_at, SCHEDULED, None))
        else:
            to_send.append(row)
    return to_send, to_release


def _release_parameters(to_release: list[tuple], claim_token: uuid.UUID) -> dict:
    ids, send_ats, statuses, reasons = (list(column) for column in zip(*to_release, strict=True))
    return {"ids": ids, "send_ats": send_ats, "statuses": statuses, "reasons": reasons,
            "claim_token": str(claim_token)}


class SendPacer:
    """Spaces the requests to one endpoint ``1 / per_second`` apart, across every task sending to it.

    The next free slot of each endpoint lives in the ``send_pacing`` table; a task reserves a few slots per
    round trip (about a fifth of a second's worth), so concurrent tasks on any worker interleave their
    requests instead of adding their rates up. Reserved slots are contiguous and never overlap.
    """

    def __init__(self, conn: Any, endpoint: str, per_second: int, requests: int, clock: Clock) -> None:
        self._conn = conn
        self._endpoint = endpoint
        self._interval = timedelta(seconds=1 / per_second)
        self._chunk = max(1, per_second // 5)
        self._unreserved = requests
        self._clock = clock
        self._slots: deque[datetime] = deque()
        self._lock = asyncio.Lock()

    async def wait_turn(self) -> None:
        """Wait for this task's next reserved slot; each caller gets one slot."""
        async with self._lock:
            if not self._slots:
                count = min(self._chunk, self._unreserved)
                first = await asyncio.to_thread(self._reserve, count)
                self._unreserved -= count
                self._slots.extend(first + index * self._interval for index in range(count))
            slot = self._slots.popleft()
        await _sleep_until_async(slot, self._clock)

    def _reserve(self, count: int) -> datetime:
        with self._conn.cursor() as cursor:
            cursor.execute(
                load_sql("deliver/reserve_send_slots"),
                {"endpoint": self._endpoint, "now": self._clock(), "count": count, "interval": self._interval},
            )
            (first_slot,) = cursor.fetchone()
        self._conn.commit()
        return first_slot


async def _sleep_until_async(instant: datetime, clock: Clock) -> None:
    while (remaining := (instant - clock()).total_seconds()) > 0:
        await asyncio.sleep(remaining)


async def _send_all(
    rows: list[ClaimedRow],
    open_client: OpenClient,
    settings: Settings,
    secret: str | None,
    clock: Clock,
    pacer: SendPacer | None,
) -> list[Attempt]:
    # A fixed pool of max_in_flight workers pulls rows in order: memory follows the pool, not the batch, where
    # one waiting coroutine per row would hold a frame for every row of a large batch at once.
    in_flight = asyncio.Semaphore(settings.max_in_flight)
    attempts: list[Attempt | None] = [None] * len(rows)
    pending = iter(enumerate(rows))

    async def worker(post: Post) -> None:
        for index, row in pending:
            attempts[index] = await _send_one(row, post, in_flight, secret, settings, clock, pacer)

    async with open_client() as post:
        await asyncio.gather(*(worker(post) for _ in range(min(settings.max_in_flight, len(rows)))))
    return [attempt for attempt in attempts if attempt is not None]


async def _send_one(
    row: ClaimedRow,
    post: Post,
    in_flight: asyncio.Semaphore,
    secret: str | None,
    settings: Settings,
    clock: Clock,
    pacer: SendPacer | None,
) -> Attempt:
    async with in_flight:
        await _sleep_until_async(row.send_at, clock)
        if pacer is not None:
            await pacer.wait_turn()
        started_at = clock()
        body = request_body(row.id, row.user_id, row.first_name, row.last_name, row.occasion, row.occasion_date,
                            occasion_named(row.occasion).message)
        headers = request_headers(str(row.webhook_id), int(started_at.timestamp()), body, secret)
        started = time.perf_counter()
        try:
            reply = await post(body, headers)
        except (TimeoutError, OSError, aiohttp.ClientError) as error:
            finished_at = clock()
            message = f"{type(error).__name__}: {error}".strip(": ")
            latency_ms = (time.perf_counter() - started) * 1000
            return Attempt(row, started_at, finished_at, None, message, True, latency_ms, finished_at)
        finished_at = clock()
        latency_ms = (time.perf_counter() - started) * 1000
        if is_success(reply.status):
            return Attempt(row, started_at, finished_at, reply.status, None, False, latency_ms, None)
        retryable = is_retryable(reply.status)
        retry_at = _retry_at(reply, finished_at, settings) if retryable else None
        return Attempt(row, started_at, finished_at, reply.status, f"HTTP {reply.status}", retryable, latency_ms,
                       retry_at)


def _retry_at(reply: Reply, finished_at: datetime, settings: Settings) -> datetime:
    """When a retryable failure may be tried again: at once, unless the endpoint asked for a pause.

    A 429 or a ``Retry-After`` header is honoured, but never shorter than ``birthday_retry_after_floor_seconds``,
    so an endpoint that says "retry now" is not hammered.
    """
    asked_for = retry_after_delay(reply.retry_after, finished_at)
    if reply.status != TOO_MANY_REQUESTS and asked_for is None:
        return finished_at
    return finished_at + max(timedelta(seconds=settings.retry_after_floor_seconds), asked_for or timedelta(0))


def _record_parameters(attempts: list[Attempt], claim_token: uuid.UUID, task: TaskRef | None = None) -> dict:
    return {
        **(dataclasses.asdict(task) if task else dict.fromkeys(("dag_id", "run_id", "task_id", "map_index",
                                                                 "try_number"))),
        "ids": [attempt.row.id for attempt in attempts],
        "attempt_numbers": [attempt.row.attempts + 1 for attempt in attempts],
        "started_ats": [attempt.started_at for attempt in attempts],
        "finished_ats": [attempt.finished_at for attempt in attempts],
        "http_statuses": [attempt.http_status for attempt in attempts],
        "errors": [attempt.error for attempt in attempts],
        "latencies_ms": [attempt.latency_ms for attempt in attempts],
        "retry_afters": [attempt.retry_at for attempt in attempts],
        "claim_token": str(claim_token),
    }
