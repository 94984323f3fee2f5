"""Deliver one batch: the steps of a send task, in order, each the job of its own module.

1. ``claims``: wait until ``prepare_seconds`` before the batch's instant; ask ``endpoints`` whether the endpoint
   may be sent to (every row; one, the probe of an open circuit breaker; or none, disabled or breaker open);
   claim that many rows due at the instant under a new token and lease, re-check each against its user and hand
   back (re-planned, invalid, cancelled) those not due as planned;
2. ``lease``: keep the claim alive, a heartbeat on the database clock, from the claim for as long as the batch
   is out;
3. prepare: open the recorder's and the heartbeat's connections and the HTTP session, render every body
   (``messages``); just before the instant, read the rows again (``claims.look_again``): a row whose user
   changed is re-rendered or handed back, one whose user was deleted is cancelled;
4. ``fanout``: at the instant, POST the rows (never before it, paced by ``pacing`` where a rate is set);
5. ``recording``: write each outcome down while the batch is out, at most about half a second behind, and fold
   it into the endpoint's shared state.

A claim taken early is safe from every other path: its rows are ``sending`` under a live lease, which no other
claim (a retry, a second copy, the sweep, the resend) takes.

A 410 Gone, or the circuit breaker's count of failures reached, stops the batch: no new request starts, the
requests in flight finish and are recorded, and the rows never posted are handed back ``scheduled`` to wait.
Whatever raises on the way, the outcomes known by then are recorded before the error leaves, and the lease
ends, so rows never sent are free for the next claim (a retry, the sweep) at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from birthday_pipeline.db.connections import ReopeningConnection
from birthday_pipeline.deliver.claims import (Claim, ClaimedRow, Release, TaskRef, claim_batch, look_again, recheck,
                                              release)
from birthday_pipeline.deliver.endpoints import Admission, Endpoint, Watch, admit, hand_back_unsent
from birthday_pipeline.deliver.fanout import Attempt, Clock, OpenClient, Outgoing, send_all, utc_now
from birthday_pipeline.deliver.lease import LeaseHeartbeat, end_lease, end_lease_after_sending
from birthday_pipeline.deliver.messages import Renderer
from birthday_pipeline.deliver.pacing import SendPacer, waits_until
from birthday_pipeline.deliver.recording import Recorder
from birthday_pipeline.plan.planning import ReleaseBatch
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status

log = logging.getLogger(__name__)

# The most ids one log line lists; the count is always complete.
LOGGED_IDS = 50

# How long before the instant the claimed rows are read again: at least LOOK_AGAIN_SECONDS, and LOOK_AGAIN_CLAIMS
# times as long as the claim took (reading the same rows again takes about as long), so the second look is over
# before the first request is due. A change made after it races the send, as it would at any claim.
LOOK_AGAIN_SECONDS = 0.25
LOOK_AGAIN_CLAIMS = 2


@dataclasses.dataclass(frozen=True)
class Sender:
    """What a send task sends with: a way to open database connections, the HTTP client, the settings, the
    signing secret (validated before anything is claimed), the endpoint (its hash names the pacing), the
    connection id (it names the endpoint in errors), the clock that guards every request against earliness, and
    the task instance (named in leases and attempts).

    ``connect`` opens a new connection each call: the recorder and the lease heartbeat each have one of
    their own, and every connection lost on the way is opened again with it.
    """

    connect: Callable[[], Any]
    open_client: OpenClient
    settings: Settings
    secret: str | None = None
    endpoint: str = ""
    conn_id: str | None = None
    clock: Clock = utc_now
    task: TaskRef | None = None

    def endpoint_state(self) -> Endpoint:
        """The endpoint as its shared state (disabled, circuit breaker) names it."""
        return Endpoint.of(self.endpoint, self.conn_id, self.settings)


@dataclasses.dataclass(frozen=True)
class DeliverySummary:
    claimed: int
    sent: int
    failed: int
    skipped: int
    retryable_failures: list[tuple[int, str]]
    permanent_failures: list[tuple[int, str]]
    by_occasion: dict[str, dict[str, int]]  # occasion -> {"sent": n, "failed": n}
    lateness_seconds: list[float]  # for each 2xx: sent_at - send_at
    requests: int  # HTTP requests made
    seconds: float  # from the first request to the last answer
    gone: list[int] = dataclasses.field(default_factory=list)  # rows answered 410 Gone: waiting, not failed
    handed_back: int = 0  # claimed rows never posted (the endpoint is gone or its breaker opened): waiting

    @property
    def waiting(self) -> int:
        """Rows of this batch left waiting for the endpoint."""
        return len(self.gone) + self.handed_back


class RetryableDeliveryError(RuntimeError):
    """Some rows of the batch failed in a way a later try may fix; the others are recorded already."""


def deliver_batch(conn: Any, batch: ReleaseBatch, sender: Sender, grace: timedelta = timedelta(0)) -> DeliverySummary:
    """Deliver the due rows of ``batch`` on ``conn``: claimed and prepared ``prepare_seconds`` before its instant,
    if it has one, and posted at the instant.

    ``conn`` holds the claim's transaction and then serves the pacer; ``grace`` is how old a scheduled row's
    instant must be before it is claimed (the sweep's head start for the hourly releases).
    """
    instant = batch.send_at
    if instant is not None:
        for wait in waits_until(instant - timedelta(seconds=sender.settings.prepare_seconds), sender.clock):
            time.sleep(wait)
    admission = admit(conn, sender.endpoint_state())
    if admission.refused:
        log.warning("Endpoint of connection %s: %s", sender.conn_id, admission.refused)
    if admission.rows == 0:
        return _Tally().summary(claimed=0, skipped=0)
    # The rows due at the instant, claimed before it: no request leaves before it all the same (fanout).
    due_at = sender.clock() if instant is None else max(sender.clock(), instant)
    claim = claim_batch(conn, batch, sender.settings, due_at, grace, sender.task, limit=admission.rows)
    return deliver_claimed(conn, claim, sender, admission, instant)


def deliver_claimed(conn: Any, claim: Claim, sender: Sender, admission: Admission | None = None,
                    instant: datetime | None = None, honour_opt_out: bool = True) -> DeliverySummary:
    """Re-check, prepare, send and record rows claimed (in the open transaction of ``conn``) under ``claim``;
    with an ``instant``, read them again just before it and post the first request at it.

    The second half of ``deliver_batch``, shared with the resend DAG, which claims its rows its own way, sends them
    at once whatever the endpoint's state (an operator asked for them; ``admission`` None) and, forced, to an
    opted-out user (``honour_opt_out`` off).
    """
    settings = sender.settings
    endpoint = sender.endpoint_state()
    admission = admission or Admission(None, 0)
    watch = Watch(endpoint, admission)
    to_send, to_release = recheck(claim.rows, settings, honour_opt_out)
    release(conn, claim.token, to_release)
    if not to_send:
        end_lease(conn, claim.token)
    conn.commit()
    _log_released(to_release)

    tally = _Tally()
    handed_back = 0
    skipped = len(to_release)
    if to_send:
        # This task's own connection, idle while the batch is out: the pacer reserves its slots on it, and the
        # lease is ended on it once every outcome is recorded.
        own = ReopeningConnection(sender.connect, conn=conn)
        try:
            with (LeaseHeartbeat(sender.connect, claim.token, settings.lease_seconds, claim.lease_opened_at) as lease,
                  Recorder(sender.connect, claim.token, sender.task, endpoint, admission.probe) as recorder):
                pacer = SendPacer(own, sender.endpoint, settings.max_requests_per_second, len(to_send),
                                  sender.clock) if settings.max_requests_per_second else None

                def on_attempt(attempt: Attempt) -> None:
                    tally.add(attempt)
                    watch.observe(attempt)
                    recorder.add(attempt)

                def check() -> None:
                    lease.check()
                    recorder.check()

                renderer = Renderer(settings)
                outgoing = [Outgoing(row, renderer.body_of(row)) for row in to_send]
                settle = None if instant is None else functools.partial(
                    _settle, own, claim, outgoing, sender, instant, renderer, honour_opt_out)
                # What is built by now (Airflow's modules, the rows and their bodies) lives until the batch ends:
                # kept out of the cyclic garbage collector's scans while it sends, which took a quarter of the
                # send's CPU (docs/performance.md).
                gc.freeze()
                try:
                    skipped += asyncio.run(_post(outgoing, settle, sender, pacer, on_attempt, check, watch.stopped))
                finally:
                    gc.unfreeze()
            if watch.stopped():  # every outcome is recorded: the rows still held were never posted
                unsent = [row.id for row in to_send]
                handed_back = own.run(lambda conn: hand_back_unsent(conn, claim.token, unsent),
                                      "handing back unsent rows")
                _log_stopped(sender.conn_id, watch, handed_back)
        finally:
            end_lease_after_sending(own, claim.token)
            own.close()
    return tally.summary(claimed=len(claim.rows), skipped=skipped, handed_back=handed_back)


async def _post(outgoing: list[Outgoing], settle: Callable[[], tuple[list[Outgoing], list[Release]]] | None,
                sender: Sender, pacer: SendPacer | None, on_attempt: Callable[[Attempt], None],
                check: Callable[[], None], stopped: Callable[[], bool]) -> int:
    """Open the HTTP session; ``settle`` the rows, if there is an instant to settle them before (in a thread, off
    the event loop); then post them, each at its instant (``fanout``). Returns how many rows settling handed back."""
    released: list[Release] = []
    async with sender.open_client() as post:
        if settle is not None:
            outgoing, released = await asyncio.to_thread(settle)
        await send_all(outgoing, post, sender.settings, sender.secret, sender.clock, pacer, on_attempt, check,
                       sender.conn_id, stopped)
    return len(released)


def _settle(own: ReopeningConnection, claim: Claim, outgoing: list[Outgoing], sender: Sender, instant: datetime,
            renderer: Renderer, honour_opt_out: bool) -> tuple[list[Outgoing], list[Release]]:
    """Just before ``instant``, read the claimed rows again (``claims.look_again``) and hand back those that must
    not be sent now; what is left to send, the changed rows' bodies rendered again, and what was handed back."""
    lead = timedelta(seconds=max(LOOK_AGAIN_SECONDS, LOOK_AGAIN_CLAIMS * claim.seconds))
    for wait in waits_until(instant - lead, sender.clock):
        time.sleep(wait)

    def look(conn: Any) -> tuple[dict[int, ClaimedRow], list[Release]]:
        changed, to_release = look_again(conn, claim.token, [item.row for item in outgoing], sender.settings,
                                         honour_opt_out)
        release(conn, claim.token, to_release)
        return changed, to_release

    changed, to_release = own.run(look, "reading the claimed rows again")
    _log_released(to_release)
    released = {row.id for row in to_release}
    settled = [Outgoing(changed[item.row.id], renderer.body_of(changed[item.row.id])) if item.row.id in changed
               else item for item in outgoing if item.row.id not in released]
    return settled, to_release


class _Tally:
    """The batch's figures, summed from its attempts as they come in."""

    def __init__(self) -> None:
        self.requests = 0
        self.by_occasion: dict[str, dict[str, int]] = {}
        self.lateness_seconds: list[float] = []
        self.retryable_failures: list[tuple[int, str]] = []
        self.permanent_failures: list[tuple[int, str]] = []
        self.gone: list[int] = []
        self.first_started: float | None = None
        self.last_finished: float | None = None

    def add(self, attempt: Attempt) -> None:
        self.requests += 1
        row = attempt.row
        counts = self.by_occasion.setdefault(row.occasion, {"sent": 0, "failed": 0})
        if attempt.error is None:
            counts["sent"] += 1
            self.lateness_seconds.append((attempt.finished_at - row.send_at).total_seconds())
        elif attempt.row_status == Status.SCHEDULED:
            self.gone.append(row.id)
        else:
            counts["failed"] += 1
            failures = self.retryable_failures if attempt.retryable else self.permanent_failures
            failures.append((row.id, attempt.error))
        started, finished = attempt.started_at.timestamp(), attempt.finished_at.timestamp()
        self.first_started = started if self.first_started is None else min(self.first_started, started)
        self.last_finished = finished if self.last_finished is None else max(self.last_finished, finished)

    def summary(self, claimed: int, skipped: int, handed_back: int = 0) -> DeliverySummary:
        failed = len(self.retryable_failures) + len(self.permanent_failures)
        return DeliverySummary(
            claimed=claimed,
            sent=self.requests - failed - len(self.gone),
            failed=failed,
            skipped=skipped,
            retryable_failures=self.retryable_failures,
            permanent_failures=self.permanent_failures,
            by_occasion=self.by_occasion,
            lateness_seconds=self.lateness_seconds,
            requests=self.requests,
            seconds=(self.last_finished - self.first_started) if self.requests else 0.0,
            gone=self.gone,
            handed_back=handed_back,
        )


def _log_stopped(conn_id: str | None, watch: Watch, handed_back: int) -> None:
    why = "it answered 410 Gone: disabled" if watch.gone else (
        f"{watch.failures} requests in a row got no answer or a 5xx: circuit breaker open")
    log.warning("Stopped sending to the endpoint of connection %s (%s); %d claimed notifications not sent, "
                "handed back to wait for it", conn_id, why, handed_back)


def _log_released(to_release: list[Release]) -> None:
    """Log, as ids and counts, the claimed rows handed back unsent, by what happened to them."""
    replanned = [row.id for row in to_release if row.status not in (Status.INVALID, Status.CANCELLED)]
    invalid = [row.id for row in to_release if row.status == Status.INVALID]
    cancelled = [row.id for row in to_release if row.status == Status.CANCELLED]
    if replanned:
        log.info("Re-planned %d claimed notifications to a new date or instant (a rule or the user changed since "
                 "planning), not sent now: ids %s", len(replanned), listed(replanned))
    if invalid:
        log.warning("%d claimed notifications became invalid since planning, not sent: ids %s", len(invalid),
                    listed(invalid))
    if cancelled:
        log.info("Cancelled %d claimed notifications whose date was removed, or whose user opted out or no longer "
                 "exists, since planning: ids %s", len(cancelled), listed(cancelled))


def listed(ids: list[int]) -> str:
    """``ids`` for a log line: all of them up to ``LOGGED_IDS``, then how many more."""
    shown = ", ".join(map(str, ids[:LOGGED_IDS]))
    return f"[{shown}]" if len(ids) <= LOGGED_IDS else f"[{shown}, ... and {len(ids) - LOGGED_IDS} more]"
