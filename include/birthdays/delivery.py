"""Deliver one batch: claim its due rows, re-check them against ``users``, POST them, record the outcome.

Claims are leases: a row moves to ``sending`` with this call's token, and every later update is guarded by
that token, so a stale or duplicated task cannot overwrite a newer claim. Nothing is posted before its
instant, whatever woke the caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp

from include.birthdays.planning import INVALID, OCCASION, SCHEDULED, ReleaseBatch, User, plan_occasion
from include.birthdays.settings import Settings
from include.birthdays.sql import load_sql
from include.birthdays.webhooks import is_retryable, is_success, request_body, request_headers

log = logging.getLogger(__name__)

CANCELLED = "cancelled"

# Sends one request (body, headers) and returns the HTTP status; raises on transport failures.
Post = Callable[[bytes, dict[str, str]], Awaitable[int]]
OpenClient = Callable[[], AbstractAsyncContextManager[Post]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class ClaimedRow:
    id: int
    user_id: int
    occasion_date: date
    send_at: datetime
    webhook_id: uuid.UUID
    attempts: int
    first_name: str
    last_name: str
    birthday: date
    timezone: str | None


@dataclasses.dataclass(frozen=True)
class Attempt:
    row: ClaimedRow
    started_at: datetime
    finished_at: datetime
    http_status: int | None
    error: str | None
    retryable: bool
    latency_ms: float


@dataclasses.dataclass(frozen=True)
class DeliverySummary:
    claimed: int
    sent: int
    failed: int
    skipped: int
    retryable_failures: list[tuple[int, str]]
    permanent_failures: list[tuple[int, str]]


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
) -> DeliverySummary:
    """Deliver the due rows of ``batch`` (waiting for its instant first, if it has one).

    A scheduled row is claimed only once its instant is ``grace`` old: the sweep leaves healthy hourly
    releases a head start.
    """
    if batch.send_at is not None:
        _sleep_until(batch.send_at, clock)
    claim_token = uuid.uuid4()
    with conn.cursor() as cursor:
        cursor.execute(load_sql("deliver/claim"), _claim_parameters(batch, claim_token, settings, clock(), grace))
        claimed = [ClaimedRow(*row) for row in cursor.fetchall()]
        to_send, to_release = _recheck(claimed, settings)
        if to_release:
            cursor.execute(load_sql("deliver/release_claims"), _release_parameters(to_release, claim_token))
    conn.commit()

    attempts = asyncio.run(_send_all(to_send, open_client, settings, secret, clock)) if to_send else []

    if attempts:
        with conn.cursor() as cursor:
            cursor.execute(load_sql("deliver/record_attempts"), _record_parameters(attempts, claim_token))
        conn.commit()
    failed = [attempt for attempt in attempts if attempt.error is not None]
    return DeliverySummary(
        claimed=len(claimed),
        sent=len(attempts) - len(failed),
        failed=len(failed),
        skipped=len(to_release),
        retryable_failures=[(attempt.row.id, attempt.error or "") for attempt in failed if attempt.retryable],
        permanent_failures=[(attempt.row.id, attempt.error or "") for attempt in failed if not attempt.retryable],
    )


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
        "occasion": OCCASION,
        "now": now,
        "scheduled_due_by": now - grace,
        "max_lateness": timedelta(hours=settings.max_lateness_hours),
        "lease": timedelta(seconds=settings.lease_seconds),
        "max_attempts": settings.max_attempts,
    }


def _recheck(claimed: list[ClaimedRow], settings: Settings) -> tuple[list[ClaimedRow], list[tuple]]:
    """Split claimed rows into those still due as planned and those to hand back (id, send_at, status, reason).

    The user may have changed birthday or zone since planning: then the row is not sent at the old instant.
    """
    to_send, to_release = [], []
    for row in claimed:
        user = User(row.user_id, row.birthday, row.timezone)
        _, planned = plan_occasion(user, row.occasion_date.year, settings)
        if planned.occasion_date != row.occasion_date:
            to_release.append((row.id, row.send_at, CANCELLED, "birthday changed after planning"))
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


async def _send_all(
    rows: list[ClaimedRow], open_client: OpenClient, settings: Settings, secret: str | None, clock: Clock
) -> list[Attempt]:
    in_flight = asyncio.Semaphore(settings.max_in_flight)
    async with open_client() as post:
        return list(await asyncio.gather(*(_send_one(row, post, in_flight, secret, clock) for row in rows)))


async def _send_one(
    row: ClaimedRow, post: Post, in_flight: asyncio.Semaphore, secret: str | None, clock: Clock
) -> Attempt:
    async with in_flight:
        while (remaining := (row.send_at - clock()).total_seconds()) > 0:
            await asyncio.sleep(remaining)
        started_at = clock()
        body = request_body(row.id, row.user_id, row.first_name, row.last_name, OCCASION, row.occasion_date)
        headers = request_headers(str(row.webhook_id), int(started_at.timestamp()), body, secret)
        started = time.perf_counter()
        try:
            status = await post(body, headers)
        except (TimeoutError, OSError, aiohttp.ClientError) as error:
            message = f"{type(error).__name__}: {error}".strip(": ")
            return Attempt(row, started_at, clock(), None, message, True, (time.perf_counter() - started) * 1000)
        message = None if is_success(status) else f"HTTP {status}"
        retryable = not is_success(status) and is_retryable(status)
        return Attempt(row, started_at, clock(), status, message, retryable, (time.perf_counter() - started) * 1000)


def _record_parameters(attempts: list[Attempt], claim_token: uuid.UUID) -> dict:
    return {
        "ids": [attempt.row.id for attempt in attempts],
        "attempt_numbers": [attempt.row.attempts + 1 for attempt in attempts],
        "started_ats": [attempt.started_at for attempt in attempts],
        "finished_ats": [attempt.finished_at for attempt in attempts],
        "http_statuses": [attempt.http_status for attempt in attempts],
        "errors": [attempt.error for attempt in attempts],
        "latencies_ms": [attempt.latency_ms for attempt in attempts],
        "retry_afters": [attempt.finished_at if attempt.retryable else None for attempt in attempts],
        "claim_token": str(claim_token),
    }
