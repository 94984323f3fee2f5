"""Fault injection at the webhook: a receiver that is down, slow, rate-limiting, refusing or flaky, and a
30-hour outage of the whole pipeline, each with 1,000+ notifications through real Airflow task runs
(``dag.test()``), real PostgreSQL and a real receiver on 127.0.0.1.

The verdict is the ledger: delivered (webhook-ids answered 2xx), lost (due rows neither delivered nor
refused with a reason), duplicates (requests beyond the first per webhook-id, counted, never hidden).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import set_settings
from tests.faults.ledger import ledger_of, record_case
from tests.webhook_receiver import Answer, ReceivedRequest, paced_ceiling

COHORT = 1200
RUN_LIMIT = 8  # sweep runs a case may need to drain its retries


def now() -> datetime:
    return datetime.now(UTC)


def due_cohort(db, instant: datetime, size: int = COHORT, first_id: int = 1) -> list[int]:
    """``size`` users whose 09:00 local is ``instant`` (a whole hour), in the matching Etc zone."""
    offset = (9 - instant.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    zone = "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    local_day = (instant + timedelta(hours=offset)).date()
    user_ids = list(range(first_id, first_id + size))
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO users (id, first_name, last_name, birthday, timezone) VALUES (%s, 'F', 'L', %s, %s)",
            [(user_id, local_day.replace(year=1950 + user_id % 60), zone) for user_id in user_ids],
        )
    db.commit()
    return user_ids


@pytest.fixture
def fast_retries(monkeypatch):
    set_settings(monkeypatch, sweep_grace_seconds="0")
    set_settings(monkeypatch, max_in_flight="200")
    set_settings(monkeypatch, breaker_probe_seconds="1")


def sweep_until_settled(db, sweep_dag, user_ids: list[int]) -> int:
    """Run the sweep until no row of ``user_ids`` is due any more; return how many runs it took."""
    for run in range(1, RUN_LIMIT + 1):
        sweep_dag.test(logical_date=now())
        if not ledger_of(db, [], user_ids).unsettled:
            return run
        time.sleep(1)
    raise AssertionError(f"rows still unsettled after {RUN_LIMIT} sweep runs: {ledger_of(db, [], user_ids)}")


def test_receiver_down_longer_than_every_task_retry(db, webhook, sweep_dag, fast_retries) -> None:
    user_ids = due_cohort(db, now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
    webhook.stop()  # connection refused for the first run and all three of its retries

    started = time.monotonic()
    sweep_dag.test(logical_date=now())
    with db.cursor() as cursor:
        # The first wave failed and opened the circuit breaker: the 200 requests started at once (max_in_flight)
        # and those started as failures came back before the 20th (breaker_failures). The rest of the batch was
        # handed back unsent, and each retry of the task sent at most one probe, which does not count towards
        # its row's attempts. Nothing failed for good.
        cursor.execute("SELECT status, max(attempts), count(*) FROM notifications GROUP BY 1 ORDER BY 1")
        by_status = {status: (most, count) for status, most, count in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM notification_attempts")
        (requests,) = cursor.fetchone()
    db.rollback()
    assert set(by_status) == {"failed", "scheduled"} and by_status["scheduled"][0] == 0
    assert by_status["failed"][0] == 1 and by_status["failed"][1] <= 200 + 20 - 1
    assert requests <= by_status["failed"][1] + 3

    webhook.start()  # back on the same port
    runs = sweep_until_settled(db, sweep_dag, user_ids)

    ledger = ledger_of(db, webhook.requests, user_ids)
    record_case("receiver down longer than all task retries", ledger, time.monotonic() - started,
                f"first run: {requests} requests (a first wave, then probes), then {runs} sweep run(s)")
    assert (ledger.delivered, ledger.lost, ledger.duplicates) == (COHORT, 0, 0)


def test_receiver_slower_than_the_timeout(db, webhook, sweep_dag, fast_retries, monkeypatch) -> None:
    """A reply after the timeout is a failure to the sender; what the receiver did with it, it did."""
    set_settings(monkeypatch, request_timeout_seconds="1")
    user_ids = due_cohort(db, now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
    slow = set(random.Random(5).sample(user_ids, COHORT // 10))
    seen: Counter[str] = Counter()

    def answer(request: ReceivedRequest) -> Answer:
        seen[request.headers["webhook-id"]] += 1
        first_try_of_a_slow_user = request.json["user_id"] in slow and seen[request.headers["webhook-id"]] == 1
        return Answer(200, {}, 2.0 if first_try_of_a_slow_user else 0.0)

    webhook.answer_with(answer)
    started = time.monotonic()
    runs = sweep_until_settled(db, sweep_dag, user_ids)

    ledger = ledger_of(db, webhook.requests, user_ids)
    record_case("receiver slower than the 1 s timeout for 10 %", ledger, time.monotonic() - started,
                f"{runs} sweep run(s); each duplicate is a timed-out request the receiver still got")
    assert (ledger.delivered, ledger.lost) == (COHORT, 0)
    # Every slow first try timed out and was retried. Under load a fast request can time out as well, before
    # or after the receiver got it, so duplicates lie between the slow users and the timed-out attempts.
    assert len(slow) <= ledger.duplicates <= ledger.timed_out_attempts


def test_rate_limits_refusals_and_random_server_errors(db, webhook, sweep_dag, fast_retries, monkeypatch) -> None:
    set_settings(monkeypatch, retry_after_floor_seconds="2")
    user_ids = due_cohort(db, now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
    picker = random.Random(20261128)
    shuffled = picker.sample(user_ids, len(user_ids))
    gone, bad, limited, limited_now = (set(shuffled[a:b]) for a, b in [(0, 24), (24, 48), (48, 288), (288, 408)])
    seen: Counter[str] = Counter()

    def answer(request: ReceivedRequest) -> Answer:
        user_id, webhook_id = request.json["user_id"], request.headers["webhook-id"]
        seen[webhook_id] += 1
        if user_id in gone:
            return Answer(404)
        if user_id in bad:
            return Answer(400)
        if seen[webhook_id] == 1 and user_id in limited:
            return Answer(429, {"Retry-After": "4"})
        if seen[webhook_id] == 1 and user_id in limited_now:
            return Answer(429, {"Retry-After": "0"})  # the floor applies
        return Answer(500 if picker.random() < 0.1 else 200)

    webhook.answer_with(answer)
    started = time.monotonic()
    runs = sweep_until_settled(db, sweep_dag, user_ids)

    ledger = ledger_of(db, webhook.requests, user_ids)
    record_case("429 (Retry-After 4 s and 0 s), 404, 400 and 500 for 10 % at random", ledger,
                time.monotonic() - started, f"{runs} sweep run(s); 404 and 400 refused, never retried")
    assert (ledger.delivered, ledger.lost, ledger.duplicates) == (COHORT - 48, 0, 0)
    assert ledger.refused == {"HTTP 404": 24, "HTTP 400": 24}
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT n.user_id, a.http_status, lead(a.started_at) OVER w - a.finished_at"
            " FROM notification_attempts a JOIN notifications n ON n.id = a.notification_id"
            " WINDOW w AS (PARTITION BY a.notification_id ORDER BY a.attempt_number)"
        )
        waits = {(user_id, status): wait for user_id, status, wait in cursor.fetchall()}
    assert min(waits[user_id, 429] for user_id in limited) >= timedelta(seconds=4)
    assert min(waits[user_id, 429] for user_id in limited_now) >= timedelta(seconds=2)
    assert all(waits[user_id, status] is None for user_id in gone | bad for status in (404, 400)
               if (user_id, status) in waits)


def test_a_30_hour_outage_sends_the_late_window_throttled_and_expires_the_rest(
    db, webhook, sweep_dag, fast_retries, monkeypatch
) -> None:
    """Nothing ran for 30 hours: rows planned before, users never planned, rows now too old."""
    set_settings(monkeypatch, max_requests_per_second="250")
    current = now().replace(minute=0, second=0, microsecond=0)
    planned_late = due_cohort(db, current - timedelta(hours=30), size=600, first_id=1)
    unplanned_late = due_cohort(db, current - timedelta(hours=29), size=600, first_id=10_001)
    too_old = due_cohort(db, current - timedelta(hours=50), size=600, first_id=20_001)
    with db.cursor() as cursor:  # what the hourly runs planned before everything stopped
        for user_ids, instant in ((planned_late, current - timedelta(hours=30)),
                                  (too_old, current - timedelta(hours=50))):
            cursor.execute(
                "INSERT INTO notifications (user_id, occasion_date, send_at)"
                " SELECT id, make_date(%s, extract(month FROM birthday)::int, extract(day FROM birthday)::int), %s"
                " FROM users WHERE id = ANY (%s)",
                (instant.year, instant, user_ids),
            )
    db.commit()

    started = time.monotonic()
    runs = sweep_until_settled(db, sweep_dag, planned_late + unplanned_late + too_old)

    late = ledger_of(db, webhook.requests, planned_late + unplanned_late)
    old = ledger_of(db, webhook.requests, too_old)
    per_second = Counter(int(request.received_at) for request in webhook.requests)
    record_case("30-hour outage, catch-up throttled to 250 requests/s", late, time.monotonic() - started,
                f"{runs} sweep run(s); {old.expired} older rows expired; busiest second "
                f"{max(per_second.values())} requests")
    assert (late.delivered, late.lost, late.duplicates) == (1200, 0, 0)
    assert (old.delivered, old.expired) == (0, 600)
    with db.cursor() as cursor:
        cursor.execute("SELECT DISTINCT last_error FROM notifications WHERE user_id = ANY (%s)", (too_old,))
        assert cursor.fetchall() == [("not sent within 48 hours of its instant",)]
    # 250/s spaced evenly: no whole second holds more than the receiver's paced ceiling.
    assert max(per_second.values()) <= paced_ceiling(250)
    span = max(request.received_at for request in webhook.requests) - min(
        request.received_at for request in webhook.requests)
    # The first request may leave a little after its slot (a new connection), shortening the span measured at
    # the receiver; with one send task for all 1,200 rows (batch size 2,000) nothing else lengthens it.
    assert span >= (1200 - 1) / 250 * 0.95
