"""The lease of a claim: alive exactly as long as its send task keeps it alive, on the database clock.

Each claim token has one row in ``claim_leases`` holding the moment its lease runs out (``expires_at``). The
claim opens it ``lease_seconds`` ahead of the database's ``now()``, in the claim's transaction
(``claims.open_lease``); while the task sends, ``LeaseHeartbeat`` moves it that far ahead of ``now()`` again
every third of the lease, on a connection of its own, by one single-row update (the batch's notification
rows are never rewritten for it); once the batch is recorded, the task ends it. A ``sending`` row whose lease
ran out, or has no row, may be claimed again by anyone (deliver/claim.sql, the sweep, the resend); every such
comparison is made in SQL against ``now()``, one clock for every worker.

A task stops starting requests the moment it cannot be sure its lease is alive: a renewal found it run out,
or no renewal has succeeded for two thirds of the lease (the database may be unreachable, the process
frozen). Its rows are then another task's to take, and sending them too would send them twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from birthday_pipeline.db.connections import CONNECTION_LOST, ReopeningConnection
from birthday_pipeline.db.statements import load_sql

log = logging.getLogger(__name__)

# How long ending a lease waits for a lost database; a lease left behind runs out by itself.
_END_PATIENCE_SECONDS = 5.0


class LeaseLostError(RuntimeError):
    """The claim's lease may have run out: the task stopped sending, and the sweep takes over its rows."""


def end_lease(conn: Any, token: uuid.UUID) -> None:
    """End the lease of claim ``token`` (in the open transaction): rows it still holds are free to claim."""
    with conn.cursor() as cursor:
        cursor.execute(load_sql("deliver/end_lease"), {"claim_token": str(token)})


def end_lease_after_sending(database: ReopeningConnection, token: uuid.UUID) -> None:
    """End the lease once the batch is recorded; if the database stays away, the lease runs out by itself."""
    try:
        database.run(lambda conn: end_lease(conn, token), "ending the lease", patience=_END_PATIENCE_SECONDS)
    except CONNECTION_LOST as error:
        log.warning("Claim %s: could not end its lease (%s); it runs out by itself", token, type(error).__name__)


class LeaseHeartbeat:
    """Keeps one claim's lease alive while its task sends (a thread and a connection of its own).

    Use as a context manager around the sending; on exit the heartbeat stops (the task then ends the lease
    with ``end_lease_after_sending``, once its outcomes are recorded). Its connection is opened as it starts, before
    the batch's instant, so that no connection is opened while the batch is out. ``check()`` raises
    ``LeaseLostError`` once the lease can no longer be trusted to be alive.
    """

    def __init__(self, connect: Callable[[], Any], token: uuid.UUID, lease_seconds: int, opened_at: float) -> None:
        self._token = token
        self._lease_seconds = lease_seconds
        self._interval = lease_seconds / 3
        # Renewals give up at once when the database is gone: the next beat tries again on a new connection.
        self._database = ReopeningConnection(connect, patience=0)
        self._renewed_at = opened_at  # when the last renewal that succeeded was sent (monotonic)
        self._lost: str | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat-{token}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopping.set()
        self._thread.join()
        self._database.close()

    def check(self) -> None:
        """Raise ``LeaseLostError`` unless the lease is surely still alive."""
        if self._lost is not None:
            raise LeaseLostError(f"claim {self._token}: {self._lost}; stopped sending")
        silent = time.monotonic() - self._renewed_at
        if silent >= 2 * self._interval:
            raise LeaseLostError(f"claim {self._token}: no lease renewal succeeded for {silent:.1f} s of its "
                                 f"{self._lease_seconds} s lease; stopped sending")

    def _beat(self) -> None:
        try:
            self._database.run(lambda conn: None, "connecting the lease heartbeat")
        except CONNECTION_LOST as error:  # the first renewal tries again; check() reports a lease left unrenewed
            log.warning("Claim %s: the lease heartbeat could not connect yet (%s)", self._token, type(error).__name__)
        wait = self._interval
        while not self._stopping.wait(wait):
            sent_at = time.monotonic()
            try:
                renewed = self._database.run(self._renew, "renewing the lease")
            except CONNECTION_LOST as error:
                log.warning("Claim %s: could not renew its lease (%s); trying again", self._token,
                            type(error).__name__)
                wait = min(1.0, self._interval)  # soon again, on a new connection
                continue
            except Exception as error:  # noqa: BLE001 - a bug or a broken schema: stop sending, say why
                self._lost = f"renewing the lease failed ({type(error).__name__}: {error})"
                log.error("Claim %s: %s", self._token, self._lost)
                return
            if not renewed:
                self._lost = "its lease had run out before it could be renewed"
                log.error("Claim %s: %s", self._token, self._lost)
                return
            self._renewed_at = sent_at
            wait = self._interval

    def _renew(self, conn: Any) -> bool:
        with conn.cursor() as cursor:
            cursor.execute(load_sql("deliver/renew_lease"),
                           {"claim_token": str(self._token), "lease_seconds": self._lease_seconds})
            return cursor.rowcount == 1
