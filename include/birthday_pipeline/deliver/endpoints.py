"""Endpoints that are gone or failing: their state, shared by every send task, and one task's watch on them.

The state of each endpoint lives in ``webhook_endpoints``, named like ``send_pacing`` names it, by the SHA-256
of its URL, never the URL:

- **disabled**: it answered ``410 Gone`` (the Standard Webhooks spec's "the endpoint was removed, stop
  sending"). No task sends to it until it is enabled again (the ``birthday_endpoint`` DAG); its due rows wait,
  ``scheduled`` or retryably ``failed`` as they were, and expire at the late window like any other row.
- **circuit breaker**: requests that got no answer (connection errors, timeouts) or a 5xx, counted in a row over
  every task; any 2xx resets the count. Once it reaches ``breaker_failures`` the breaker is open: no batch sends
  to the endpoint, except one probe request (one row) at a time, ``breaker_probe_seconds`` apart; the first
  probe that succeeds closes it, and the next sweep drains the backlog. A failed probe is recorded but does not
  count towards its row's ``max_attempts``: it tests the endpoint, not the row, so an outage of any length
  costs no row its delivery.

A send task asks ``admit`` before it claims: every row, one row (it took the probe) or none. While it sends,
its ``Watch`` stops it starting new requests the moment it sees a 410 or the breaker's count reached; the
recorder folds each flush's outcomes into the shared state (``note_outcomes``), and the rows the task never
posted are handed back ``scheduled`` (``hand_back_unsent``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.deliver.fanout import Attempt
from birthday_pipeline.deliver.pacing import endpoint_key
from birthday_pipeline.deliver.webhooks import GONE, failure_reason, is_endpoint_failure, is_gone
from birthday_pipeline.settings import Settings


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """An endpoint as its state names it (``key``, the SHA-256 of its URL), the connection that sends to it, and
    the breaker's settings."""

    key: str
    conn_id: str | None
    breaker_failures: int
    probe_interval: timedelta

    @classmethod
    def of(cls, url: str, conn_id: str | None, settings: Settings) -> Endpoint:
        return cls(endpoint_key(url), conn_id, settings.breaker_failures,
                   timedelta(seconds=settings.breaker_probe_seconds))


@dataclasses.dataclass(frozen=True)
class Admission:
    """What a send task may claim: ``rows`` None (every due row of its batch), 1 (it holds the probe) or 0;
    ``failures`` is the breaker's count as it found it; ``refused`` says why not every row, for the log."""

    rows: int | None
    failures: int
    refused: str | None = None

    @property
    def probe(self) -> bool:
        return self.rows == 1


def admit(conn: Any, endpoint: Endpoint) -> Admission:
    """Whether a task may send to ``endpoint`` now, in a transaction of its own (committed before the claim, so
    concurrent claims never wait on the endpoint's row)."""
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("deliver/endpoint_state"), {"endpoint_sha256": endpoint.key})
        state = cursor.fetchone()
        if state is None or (state["disabled_at"] is None and state["breaker_opened_at"] is None):
            admission = Admission(None, state["consecutive_failures"] if state else 0)
        elif state["disabled_at"] is not None:
            admission = Admission(0, state["consecutive_failures"],
                                  f"disabled since {_when(state['disabled_at'])} ({state['disabled_reason']})")
        else:
            cursor.execute(load_sql("deliver/take_probe"),
                           {"endpoint_sha256": endpoint.key, "probe_interval": endpoint.probe_interval})
            took = cursor.fetchone() is not None
            opened = f"circuit breaker open since {_when(state['breaker_opened_at'])}"
            admission = Admission(1 if took else 0, state["consecutive_failures"],
                                  f"{opened}; this task sends the probe" if took
                                  else f"{opened}; next probe at {_when(state['next_probe_at'])}")
    conn.commit()
    return admission


class Watch:
    """One task's watch on its endpoint while it sends: fed each outcome as it comes in, it says when to stop
    starting requests (a 410 was answered, or the breaker's count reached ``breaker_failures``)."""

    def __init__(self, endpoint: Endpoint, admission: Admission) -> None:
        self._threshold = endpoint.breaker_failures
        # A probe's task found the breaker open: its one request is what decides, so its count starts afresh.
        self.failures = 0 if admission.probe else admission.failures
        self.gone = False

    def observe(self, attempt: Attempt) -> None:
        if is_gone(attempt.http_status):
            self.gone = True
        elif attempt.error is None:
            self.failures = 0
        elif is_endpoint_failure(attempt.http_status):
            self.failures += 1

    def stopped(self) -> bool:
        return self.gone or self.failures >= self._threshold


def note_outcomes(conn: Any, endpoint: Endpoint, attempts: Sequence[Attempt]) -> None:
    """Fold recorded ``attempts`` (in the order they finished) into the endpoint's shared state, in the open
    transaction of the flush that recorded them."""
    last_success = max((index for index, attempt in enumerate(attempts) if attempt.error is None), default=-1)
    failures = sum(1 for attempt in attempts[last_success + 1:]
                   if attempt.error is not None and is_endpoint_failure(attempt.http_status))
    gone = any(is_gone(attempt.http_status) for attempt in attempts)
    if last_success < 0 and not failures and not gone:
        return  # only answers that say nothing of the endpoint's health (4xx, 429): nothing changes
    with conn.cursor() as cursor:
        if not failures and not gone:  # a 2xx resets the count: no lock, no write, where there is none to reset
            cursor.execute(load_sql("deliver/reset_failures"), {"endpoint_sha256": endpoint.key})
            return
        cursor.execute(load_sql("deliver/note_outcomes"), {
            "endpoint_sha256": endpoint.key, "conn_id": endpoint.conn_id, "succeeded": last_success >= 0,
            "failures": failures, "gone": gone, "gone_reason": f"{failure_reason(GONE)} Gone",
            "breaker_failures": endpoint.breaker_failures, "probe_interval": endpoint.probe_interval})


def hand_back_unsent(conn: Any, token: uuid.UUID, ids: list[int]) -> int:
    """Hand the rows of ``ids`` that claim ``token`` still holds back as ``scheduled`` (in the open transaction);
    how many."""
    with conn.cursor() as cursor:
        cursor.execute(load_sql("deliver/hand_back_unsent"), {"claim_token": str(token), "ids": ids})
        return cursor.rowcount


@dataclasses.dataclass(frozen=True)
class Enabled:
    """What enabling an endpoint found: whether it was disabled (since when, why), whether its breaker was open,
    and how many notifications wait for the next sweep."""

    known: bool  # the endpoint has a state at all (it ever failed or was disabled)
    disabled_at: datetime | None
    disabled_reason: str | None
    breaker_opened_at: datetime | None
    waiting: int


def enable(conn: Any, endpoint_sha256: str, due: dict[str, Any]) -> Enabled:
    """Enable the endpoint again and reset its breaker, and count the rows waiting (``due``: the parameters of
    ``shared/due.sql`` as of now, with no grace); committed."""
    with dict_cursor(conn) as cursor:
        cursor.execute(load_sql("endpoints/enable"), {"endpoint_sha256": endpoint_sha256})
        before = cursor.fetchone()
        cursor.execute(load_sql("endpoints/waiting"), due)
        waiting = cursor.fetchone()["waiting"]
    conn.commit()
    if before is None:
        return Enabled(False, None, None, None, waiting)
    return Enabled(True, before["disabled_at"], before["disabled_reason"], before["breaker_opened_at"], waiting)


def _when(instant: datetime | None) -> str:
    return instant.isoformat() if instant is not None else "-"
