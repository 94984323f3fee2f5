"""A send batch that outlives its lease many times over, and one SIGKILLed halfway: never a second message
beyond what the killed task had in flight and had not yet written down.

The long batch runs in its own process (``tests/concurrent_sender.py``, the send task's body) while real runs
of ``birthday_sweep`` (``dag.test()``) re-drive every few seconds beside it; the killed one is a process of the
same kind, SIGKILLed 10 s into its batch, and the sweep then re-sends what it left. Real PostgreSQL, a real
receiver on 127.0.0.1; the verdict is counted at the receiver by ``webhook-id`` (``tests/faults/ledger.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import insert_due_utc_users, set_settings
from tests.faults.ledger import ledger_of, record_case
from tests.webhook_receiver import ReceivedRequest, WebhookReceiver

SWEEP_LIMIT = 8  # sweep runs a case may need once its sender is gone


def now() -> datetime:
    return datetime.now(UTC)


def start_sender(database_url: str, webhook: WebhookReceiver, instant: datetime, rows: int,
                 settings: dict[str, str], processes: list[subprocess.Popen]) -> subprocess.Popen:
    """The send task's body in a process of its own (added to ``processes``), sending notifications 1..rows due
    at ``instant``."""
    with_send_time = {"send_local_time": instant.strftime("%H:%M:%S"), **settings}
    sender = subprocess.Popen(
        [sys.executable, "-m", "tests.concurrent_sender", database_url, webhook.url, "1", str(rows),
         instant.isoformat(), str(time.time()), json.dumps(with_send_time)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    processes.append(sender)
    return sender


def wait_for_first_request(webhook: WebhookReceiver, sender: subprocess.Popen) -> float:
    deadline = time.monotonic() + 60
    while not webhook.requests:
        assert sender.poll() is None, f"the sender exited before sending: {sender.communicate()}"
        assert time.monotonic() < deadline, "the sender sent nothing within 60 s"
        time.sleep(0.05)
    return webhook.requests[0].received_at


def sweep_until_settled(db, sweep_dag, user_ids: list[int]) -> int:
    for run in range(1, SWEEP_LIMIT + 1):
        sweep_dag.test(logical_date=now())
        if not ledger_of(db, [], user_ids).unsettled:
            return run
        time.sleep(1)
    raise AssertionError(f"rows still unsettled after {SWEEP_LIMIT} sweep runs: {ledger_of(db, [], user_ids)}")


@pytest.fixture
def settings(monkeypatch, request) -> dict[str, str]:
    """The case's settings, for the sweep's runs (``birthday_settings``) and for the sender process alike."""
    values = {"sweep_grace_seconds": "120", **request.param}
    set_settings(monkeypatch, **values)
    return values


# Six leases (25 s of sending): a sweep run under dag.test() takes several seconds, ten beside three other test
# workers on 2 cores, and at least two of them must run beside the batch after its first lease ran out.
LONG_RATE, LONG_LEASE_SECONDS, LONG_LEASES = 40, 4, 6


@pytest.mark.parametrize("settings", [{"max_requests_per_second": str(LONG_RATE),
                                       "lease_seconds": str(LONG_LEASE_SECONDS)}], indirect=True)
def test_a_throttled_batch_six_leases_long_beside_the_sweep_sends_each_message_once(
        db, webhook, sweep_dag, app_database_url, settings, monkeypatch, processes) -> None:
    rows = (LONG_LEASES * LONG_LEASE_SECONDS + 1) * LONG_RATE  # a second more than its leases
    instant = insert_due_utc_users(db, rows)
    user_ids = list(range(1, rows + 1))
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    sender = start_sender(app_database_url, webhook, instant, rows, settings, processes)
    started = time.monotonic()
    first = wait_for_first_request(webhook, sender)

    beside = 0
    while sender.poll() is None:  # the sweep re-drives beside the long batch, as every 5 minutes in production
        sweep_dag.test(logical_date=now())
        beside += 1
    output, errors = sender.communicate()
    after = sweep_until_settled(db, sweep_dag, user_ids)

    ledger = ledger_of(db, webhook.requests, user_ids)
    span = max(request.received_at for request in webhook.requests) - first
    record_case(f"throttled batch ({LONG_RATE}/s) {LONG_LEASES} leases ({LONG_LEASE_SECONDS} s) long, sweep beside it",
                ledger, time.monotonic() - started,
                f"{beside} sweep runs beside the batch, {after} after; batch span {span:.1f} s at the receiver")
    assert sender.returncode == 0, errors[-3000:]
    assert (ledger.delivered, ledger.lost, ledger.duplicates, ledger.unsettled) == (rows, 0, 0, 0), ledger
    assert span >= LONG_LEASES * LONG_LEASE_SECONDS, f"the batch did not outlive its lease {LONG_LEASES} times"
    assert beside >= 2, "the sweep did not run beside the batch"


KILL_ROWS, KILL_RATE, KILL_LEASE_SECONDS, KILL_AFTER_SECONDS = 2000, 50, 3, 10


@pytest.mark.parametrize("settings", [{"max_requests_per_second": str(KILL_RATE),
                                       "lease_seconds": str(KILL_LEASE_SECONDS)}], indirect=True)
def test_a_send_task_killed_mid_batch_resends_at_most_what_was_in_flight_and_its_last_second(
        db, webhook, sweep_dag, app_database_url, settings, monkeypatch, processes) -> None:
    instant = insert_due_utc_users(db, KILL_ROWS)
    user_ids = list(range(1, KILL_ROWS + 1))
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    sender = start_sender(app_database_url, webhook, instant, KILL_ROWS, settings, processes)
    started = time.monotonic()
    first = wait_for_first_request(webhook, sender)
    time.sleep(max(0.0, first + KILL_AFTER_SECONDS - time.time()))
    killed_at = time.time()
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait()
    time.sleep(0.5)  # let the receiver finish reading what the dead process had written to its sockets
    before_redrive = webhook.requests
    in_flight = [request for request in before_redrive if not answered_by(request, killed_at)]
    last_second = [request for request in before_redrive
                   if answered_by(request, killed_at) and request.answered_at > killed_at - 1]

    time.sleep(KILL_LEASE_SECONDS + 0.5)  # the dead task's lease runs out
    set_settings(monkeypatch, max_requests_per_second="0")  # the re-drive at full speed
    runs = sweep_until_settled(db, sweep_dag, user_ids)

    ledger = ledger_of(db, webhook.requests, user_ids)
    bound = len(in_flight) + len(last_second)
    record_case(f"send task SIGKILLed {KILL_AFTER_SECONDS} s into a batch of {KILL_ROWS} at {KILL_RATE}/s", ledger,
                time.monotonic() - started,
                f"{len(before_redrive)} requests before the kill, {len(in_flight)} of them in flight at the kill, "
                f"{len(last_second)} answered in its last second; {runs} sweep run(s) re-sent the rest")
    assert (ledger.delivered, ledger.lost, ledger.unsettled) == (KILL_ROWS, 0, 0), ledger
    assert ledger.duplicates <= bound, f"{ledger.duplicates} duplicates, more than {bound} in flight or last second"


def answered_by(request: ReceivedRequest, moment: float) -> bool:
    return request.answered_at is not None and request.answered_at <= moment
