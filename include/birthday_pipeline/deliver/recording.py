"""Recording: write a batch's outcomes down while it sends, at most about half a second behind.

Every attempt becomes a row of ``notification_attempts`` and moves its notification to ``sent``, ``failed`` or,
answered 410 Gone, back to ``scheduled`` (deliver/record_attempts.sql); the same flush folds the outcomes it
recorded into the endpoint's shared state (``endpoints.note_outcomes``: disabled, circuit breaker). A thread
with a connection of its own flushes what has come in every ``FLUSH_SECONDS``, or as soon as ``FLUSH_ROWS``
outcomes wait, in one statement per flush (and one for the endpoint) that joins the outcomes to their rows by
primary key and is guarded by the claim token. So a task killed mid-batch leaves
unrecorded only the requests it had in flight and the last half second's answers: those, and only those,
are sent again (under the same webhook-ids) once its lease has run out.

A lost database is waited for (``database.RECONNECT_SECONDS``) and the flush done again on a new connection;
a flush is idempotent (an attempt already recorded under this claim is not recorded twice, and a row that
no longer holds the token is left alone). If the database stays away, ``check()`` raises, so the fan-out
stops sending what it could not record, and leaving the ``with`` block raises ``RecordingError``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from birthday_pipeline.db.connections import ReopeningConnection, dict_cursor
from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.deliver.claims import TaskRef, task_fields
from birthday_pipeline.deliver.endpoints import Endpoint, note_outcomes
from birthday_pipeline.deliver.fanout import Attempt

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
FLUSH_ROWS = 500


class RecordingError(RuntimeError):
    """Outcomes of a batch could not be written down; the lease runs out and the sweep sends them again."""


class Recorder:
    """Writes the outcomes handed to ``add`` in the background; use as a context manager around the sending.

    Leaving the block writes down everything added so far before it returns (or raises ``RecordingError``).
    ``endpoint`` is where the attempts went (None: its state is not kept); a ``probe``'s failed attempt does
    not count towards its row's ``max_attempts``.
    """

    def __init__(self, connect: Callable[[], Any], token: uuid.UUID, task: TaskRef | None,
                 endpoint: Endpoint | None = None, probe: bool = False) -> None:
        self._database = ReopeningConnection(connect)
        self._token = str(token)
        self._task_fields = task_fields(task)
        self._endpoint = endpoint
        self._probe = probe
        self._lock = threading.Lock()
        self._pending: list[Attempt] = []
        self._wake = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"recorder-{token}", daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join()
        self._database.close()
        if self._error is not None:
            with self._lock:
                unrecorded = len(self._pending)
            raise RecordingError(f"claim {self._token}: {unrecorded} outcomes could not be recorded; they are sent "
                                 f"again once the claim's lease runs out") from self._error

    def add(self, attempt: Attempt) -> None:
        """Queue one outcome for the next flush (called from the event loop; never blocks on the database)."""
        with self._lock:
            self._pending.append(attempt)
            full = len(self._pending) >= FLUSH_ROWS
        if full:
            self._wake.set()

    def check(self) -> None:
        """Raise ``RecordingError`` if outcomes can no longer be written down: sending more would lose them."""
        if self._error is not None:
            raise RecordingError(f"claim {self._token}: the database is gone; stopped sending") from self._error

    def _run(self) -> None:
        try:  # connected before the first outcome comes, off the event loop's thread
            self._database.run(lambda conn: None, "connecting the recorder", patience=0)
        except Exception as error:  # noqa: BLE001 - the first flush tries again; check() reports what stays
            log.warning("Claim %s: the recorder could not connect yet (%s)", self._token, type(error).__name__)
        stopping = False
        while not stopping:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            with self._lock:
                flushing, self._pending = self._pending, []
                stopping = self._stopping  # nothing is added once stopping: this flush is the last
            if not flushing:
                continue
            try:
                self._database.run(lambda conn, rows=flushing: self._write(conn, rows),
                                   f"recording {len(flushing)} attempts")
            except Exception as error:  # noqa: BLE001 - reported by check() and on leaving the block
                log.error("Claim %s: could not record %d attempts (%s)", self._token, len(flushing),
                          type(error).__name__)
                with self._lock:
                    self._pending[:0] = flushing
                self._error = error
                return

    def _write(self, conn: Any, attempts: list[Attempt]) -> None:
        with dict_cursor(conn) as cursor:
            cursor.execute(load_sql("deliver/record_attempts"), {
                **self._task_fields,
                "ids": [attempt.row.id for attempt in attempts],
                "attempt_numbers": [attempt.row.attempts + 1 for attempt in attempts],
                "started_ats": [attempt.started_at for attempt in attempts],
                "finished_ats": [attempt.finished_at for attempt in attempts],
                "http_statuses": [attempt.http_status for attempt in attempts],
                "errors": [attempt.error for attempt in attempts],
                "latencies_ms": [attempt.latency_ms for attempt in attempts],
                "retry_afters": [attempt.retry_at for attempt in attempts],
                "statuses": [attempt.row_status.value for attempt in attempts],
                "counted": [not self._probe or attempt.error is None for attempt in attempts],
                "claim_token": self._token,
            })
            moved = {row["id"] for row in cursor.fetchall()}
        if self._endpoint is not None:
            # Only what this flush recorded: a flush done again after a lost connection counts nothing twice.
            note_outcomes(conn, self._endpoint, [attempt for attempt in attempts if attempt.row.id in moved])
