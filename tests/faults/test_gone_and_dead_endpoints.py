"""Endpoints that are gone or dead, through real task runs (``dag.test()`` of the sweep and of
``birthday_endpoint``), real PostgreSQL, a real receiver on 127.0.0.1 and a real receiver behind
``birthday_alerts``.

- A receiver that answers ``410 Gone`` mid-batch: the endpoint is disabled, the batch stops, no row fails,
  the rows wait (``scheduled``) through later sweeps without a request; one alert says so with the count
  waiting; ``birthday_endpoint`` enables it again and the next sweep delivers each waiting row exactly once.
- A receiver that is down (connection refused) for a 30-hour-late cohort, through sweep after sweep with
  several send tasks: the circuit breaker, shared by every task, lets through only the first wave and one
  probe at a time; no row runs out of attempts; once the receiver is back everything is delivered once.

Each case prints its figures (``FAULT CASE``) and adds them to ``.local/artifacts/fault_cases.jsonl``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from tests.conftest import set_settings
from tests.faults.ledger import ledger_of, record_case
from tests.faults.test_receiver_faults import due_cohort, fast_retries, now, sweep_until_settled  # noqa: F401
from tests.webhook_receiver import Answer, ReceivedRequest, WebhookReceiver

COHORT = 1200
SENT_BEFORE_GONE = 300


@pytest.fixture
def alerts(monkeypatch):
    """A real receiver behind ``birthday_alerts``."""
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_BIRTHDAY_ALERTS",
                           json.dumps({"conn_type": "http", "host": f"{receiver.url}/alerts"}))
        yield receiver


@pytest.fixture(scope="module")
def endpoint_dag(app_database_url):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag().get_dag("birthday_endpoint")


def statuses(db, user_ids: list[int]) -> dict[str, int]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM notifications WHERE user_id = ANY (%s) GROUP BY 1", (user_ids,))
        found = dict(cursor.fetchall())
    db.rollback()
    return found


def endpoint_state(db) -> list[tuple]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT endpoint_sha256, conn_id, disabled_at IS NOT NULL, disabled_reason,"
                       " breaker_opened_at IS NOT NULL FROM webhook_endpoints")
        found = cursor.fetchall()
    db.rollback()
    return found


def webhook_endpoint_key() -> str:
    """The key ``webhook_endpoints`` names the endpoint of connection ``birthday_webhook`` by, as a task finds it."""
    from airflow.providers.http.hooks.http import HttpAsyncHook

    from birthday_pipeline.deliver.pacing import endpoint_key
    from birthday_pipeline.edge.sending import endpoint_of

    return endpoint_key(endpoint_of(HttpAsyncHook.get_connection("birthday_webhook")))


def attempts_made(db) -> int:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notification_attempts")
        (count,) = cursor.fetchone()
    db.rollback()
    return count


def test_a_410_mid_batch_disables_the_endpoint_until_it_is_enabled_and_loses_nothing(
    db, webhook, alerts, sweep_dag, endpoint_dag, fast_retries  # noqa: F811
) -> None:
    user_ids = due_cohort(db, now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1), size=COHORT)
    lock = threading.Lock()
    answered = Counter()

    def answer(request: ReceivedRequest) -> Answer:
        with lock:
            answered["all"] += 1
            return Answer(200 if answered["all"] <= SENT_BEFORE_GONE else 410)

    webhook.answer_with(answer)
    started = time.monotonic()
    assert sweep_dag.test(logical_date=now()).state == "failed"  # the send task says the endpoint is gone

    requests = webhook.requests
    first_gone = min(request.answered_at for request in requests if request.status == 410)
    received_after_gone = sum(1 for request in requests if request.received_at > first_gone)
    with db.cursor() as cursor:  # the sender's side: requests it started once it had the first 410 answer
        cursor.execute("SELECT count(*) FROM notification_attempts WHERE started_at >"
                       " (SELECT min(finished_at) FROM notification_attempts WHERE http_status = 410)")
        (started_after_gone,) = cursor.fetchone()
    waiting = statuses(db, user_ids)
    ledger = ledger_of(db, requests, user_ids)
    # Nothing failed: the rows not delivered wait, scheduled. No request started once the sender had the 410;
    # only those already in flight (at most max_in_flight, 200) reached the receiver after it answered it.
    assert waiting == {"sent": SENT_BEFORE_GONE, "scheduled": COHORT - SENT_BEFORE_GONE}
    assert ledger.delivered == SENT_BEFORE_GONE and ledger.duplicates == 0
    assert started_after_gone == 0
    assert received_after_gone < 200 and len(requests) <= SENT_BEFORE_GONE + 200
    [(key, conn_id, disabled, reason, _)] = endpoint_state(db)
    assert (key, conn_id, disabled, reason) == (webhook_endpoint_key(), "birthday_webhook", True, "HTTP 410 Gone")
    assert webhook.url not in json.dumps(endpoint_state(db), default=str)

    # Later sweeps send it nothing, fail nothing, and the alert is said once, with the count waiting.
    assert sweep_dag.test(logical_date=now()).state == "success"
    assert len(webhook.requests) == len(requests)
    assert statuses(db, user_ids) == waiting
    disabled_alerts = [request.json for request in alerts.requests if request.json["event"] == "endpoint_disabled"]
    assert [(alert["conn_id"], alert["waiting"]) for alert in disabled_alerts] == [
        ("birthday_webhook", COHORT - SENT_BEFORE_GONE)]
    assert "trigger birthday_endpoint with conn_id birthday_webhook" in disabled_alerts[0]["text"]
    assert webhook.url not in json.dumps([request.json for request in alerts.requests])

    # Enabled again (the endpoint is back): the next sweep delivers each waiting row exactly once.
    webhook.answer_with(None)
    assert endpoint_dag.test(run_conf={"conn_id": "birthday_webhook"}).state == "success"
    assert endpoint_state(db)[0][2:] == (False, None, False)
    assert sweep_dag.test(logical_date=now()).state == "success"
    ledger = ledger_of(db, webhook.requests, user_ids)
    record_case("410 Gone after 300 of 1,200 requests, enabled again", ledger, time.monotonic() - started,
                f"{len(requests)} requests to the 410; {started_after_gone} started after the sender had it, "
                f"{received_after_gone} in flight received after it; rows then {waiting}; a later sweep sent "
                "nothing; after enabling, one sweep delivered the rest")
    assert (ledger.delivered, ledger.lost, ledger.duplicates, ledger.unsettled) == (COHORT, 0, 0, 0)
    assert [request.json["event"] for request in alerts.requests].count("endpoint_enabled") == 1


def test_an_endpoint_dead_through_a_30_hour_outage_costs_a_few_requests_and_loses_nothing(
    db, webhook, sweep_dag, fast_retries, monkeypatch  # noqa: F811
) -> None:
    """A cohort due 30 hours ago, inside the late window; the endpoint refuses connections through sweep after
    sweep, each mapped over four send tasks (batches of 300); then it comes back."""
    set_settings(monkeypatch, batch_size="300", breaker_failures="5", breaker_probe_seconds="1")
    user_ids = due_cohort(db, now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=30), size=COHORT)
    webhook.stop()

    started = time.monotonic()
    outage_sweeps = 4
    for _ in range(outage_sweeps):
        sweep_dag.test(logical_date=now())
        time.sleep(1)
    during_outage = attempts_made(db)
    waiting = statuses(db, user_ids)
    with db.cursor() as cursor:
        cursor.execute("SELECT max(attempts) FROM notifications")
        (most_attempts,) = cursor.fetchone()
    db.rollback()

    webhook.start()
    runs = sweep_until_settled(db, sweep_dag, user_ids)
    ledger = ledger_of(db, webhook.requests, user_ids)
    record_case("endpoint refusing connections for a 30-hour-late cohort", ledger, time.monotonic() - started,
                f"{during_outage} requests in {outage_sweeps} sweep runs while it was down (rows then {waiting}, "
                f"most attempts of a row {most_attempts}); then {runs} sweep run(s)")
    # The first wave of one task (the 200 requests started at once, max_in_flight, and those started as
    # failures came back before the 5th, breaker_failures) and then probes, one at a time, at most one per try
    # of each of the 4 tasks of each run: never one request per row per try. No row ran out of attempts: a
    # failed probe does not count.
    assert during_outage <= 200 + 5 - 1 + outage_sweeps * 4 * 4
    assert most_attempts <= 1
    assert set(waiting) <= {"scheduled", "failed"}
    assert (ledger.delivered, ledger.lost, ledger.duplicates) == (COHORT, 0, 0)
    assert endpoint_state(db)[0][2:] == (False, None, False)


def test_an_endpoint_answering_5xx_opens_the_breaker_after_the_set_failures_and_a_2xx_closes_it(
    db, webhook, sweep_dag, fast_retries, monkeypatch  # noqa: F811
) -> None:
    set_settings(monkeypatch, max_in_flight="2", breaker_failures="5", breaker_probe_seconds="3")
    user_ids = due_cohort(db, now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1), size=50)
    webhook.always(503)

    started = time.monotonic()
    sweep_dag.test(logical_date=now())
    failed_run = len(webhook.requests)
    # Two in flight at a time: the fifth 503 in a row stops the batch with at most one more request out. The task's
    # three retries find the breaker open; each sends a probe if the last one is 3 s old.
    assert 5 <= failed_run <= 6 + 3
    assert set(statuses(db, user_ids)) == {"failed", "scheduled"}
    assert endpoint_state(db)[0][4] is True

    webhook.always(200)
    time.sleep(3)
    runs = sweep_until_settled(db, sweep_dag, user_ids)
    ledger = ledger_of(db, webhook.requests, user_ids)
    assert (ledger.delivered, ledger.lost, ledger.duplicates) == (50, 0, 0)
    assert endpoint_state(db)[0][4] is False
    record_case("endpoint answering 503, then 200", ledger, time.monotonic() - started,
                f"{failed_run} requests in the run that opened the breaker (max_in_flight 2, breaker_failures 5); "
                f"then {runs} sweep run(s)")


def test_the_rows_waiting_for_a_disabled_endpoint_expire_at_the_late_window_and_nothing_is_sent(
    db, webhook, sweep_dag, fast_retries  # noqa: F811
) -> None:
    current = now().replace(minute=0, second=0, microsecond=0)
    recent = due_cohort(db, current - timedelta(hours=2), size=20, first_id=1)
    old = due_cohort(db, current - timedelta(hours=47), size=20, first_id=1001)
    with db.cursor() as cursor:  # planned before, and the endpoint answered 410 since
        cursor.execute("INSERT INTO notifications (user_id, occasion_date, send_at)"
                       " SELECT id, make_date(%s, extract(month FROM birthday)::int, extract(day FROM birthday)::int),"
                       " %s FROM users WHERE id = ANY (%s)",
                       ((current - timedelta(hours=47)).year, current - timedelta(hours=47), old))
        cursor.execute("INSERT INTO webhook_endpoints (endpoint_sha256, conn_id, disabled_at, disabled_reason)"
                       " VALUES (%s, 'birthday_webhook', now(), 'HTTP 410 Gone')", (webhook_endpoint_key(),))
    db.commit()

    # An hour later by the sweep's clock the old rows' instants are 48 hours old: expired, never failed.
    assert sweep_dag.test(logical_date=now() + timedelta(hours=1, minutes=1)).state == "success"
    assert webhook.requests == []
    assert statuses(db, recent) == {"scheduled": 20}
    assert statuses(db, old) == {"expired": 20}
