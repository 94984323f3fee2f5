"""The birthday_resend DAG under ``dag.test()``: real PostgreSQL, a real receiver on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from birthday_pipeline.operate.resend import ResendRequest, resend
from birthday_pipeline.plan.planning import User
from birthday_pipeline.rules.occasions import BIRTHDAY
from birthday_pipeline.settings import Settings
from tests.conftest import insert_users, set_settings

INSTANT = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
DAY = INSTANT.date()
SENT_AT = INSTANT + timedelta(seconds=1)


@pytest.fixture(scope="module")
def resend_dag(app_database_url):
    from tests.airflow_dagbag import DagBag

    return DagBag().get_dag("birthday_resend")


@pytest.fixture
def rows(db, monkeypatch) -> dict[str, tuple[int, uuid.UUID]]:
    """Users 1-5 at UTC, their birthday on DAY: 1 sent, 2 failed, 3 expired, 4 invalid, 5 due tomorrow."""
    set_settings(monkeypatch, send_local_time=INSTANT.strftime("%H:%M:%S"))
    insert_users(db, [User(user_id, DAY.replace(year=1990), "UTC", "Ada", "Lovelace") for user_id in range(1, 6)])
    tomorrow = INSTANT + timedelta(days=1)
    with db.cursor() as cursor:
        ids = []
        for values in [(1, DAY, INSTANT, "sent", 1, SENT_AT, None), (2, DAY, INSTANT, "failed", 10, None, "HTTP 500"),
                       (3, DAY, INSTANT, "expired", 0, None, "not sent within 48 hours of its instant"),
                       (4, DAY, None, "invalid", 0, None, "user has no name"),
                       (5, tomorrow.date(), tomorrow, "scheduled", 0, None, None)]:
            cursor.execute(
                "INSERT INTO notifications (user_id, occasion, occasion_date, send_at, status, attempts, sent_at,"
                " last_error) VALUES (%s, 'birthday', %s, %s, %s, %s, %s, %s) RETURNING id, webhook_id",
                values,
            )
            ids.append(cursor.fetchone())
    db.commit()
    return {status: row for status, row in zip(("sent", "failed", "expired", "invalid", "scheduled"), ids, strict=True)}


def state(db) -> list[tuple]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, status, attempts, webhook_id FROM notifications ORDER BY user_id")
        return cursor.fetchall()


def conf(**overrides) -> dict:
    return {"user_ids": [1, 2, 3], "occasion": "birthday", "date": DAY.isoformat(), **overrides}


@pytest.mark.core
def test_a_dry_run_by_default_logs_what_would_be_sent_and_sends_nothing(db, webhook, resend_dag, rows,
                                                                         caplog) -> None:
    before = state(db)
    caplog.set_level(logging.INFO, logger="birthday_pipeline")

    with caplog.at_level(logging.INFO):
        result = resend(db, ResendRequest([1, 2, 3, 99], BIRTHDAY, DAY), Settings(), None,
                        requested_at=datetime.now(UTC))
    assert resend_dag.test(run_conf=conf()).state == "success"

    assert webhook.requests == []
    assert state(db) == before
    assert result.delivery is None
    assert result.counts() == {"send": 2, "resend with a new webhook-id": 0, "refuse": 2}
    messages = [record.getMessage() for record in caplog.records if record.name == "birthday_pipeline.operate.resend"]
    failed_id, failed_webhook = rows["failed"]
    sent_id, sent_webhook = rows["sent"]
    assert (f"Dry run, would send user 2 notification {failed_id}, instant {INSTANT.isoformat()}, "
            f"webhook-id {failed_webhook}: failed, never delivered (last error: HTTP 500)") in messages
    assert (f"Refused user 1 notification {sent_id} (sent): already sent at {SENT_AT.isoformat()} with webhook-id "
            f"{sent_webhook}; set force to send it again") in messages
    assert "Refused user 99 notification None (None): no such user" in messages
    assert not any("Ada" in message or "Lovelace" in message for message in messages)


@pytest.mark.core
def test_without_force_the_sent_row_is_refused_and_the_undelivered_ones_go_out_under_their_webhook_ids(
        db, webhook, resend_dag, rows) -> None:
    assert resend_dag.test(run_conf=conf(dry_run=False)).state == "success"

    received = {request.json["user_id"]: request for request in webhook.requests}
    assert sorted(received) == [2, 3]
    assert received[2].headers["webhook-id"] == str(rows["failed"][1])
    assert received[3].headers["webhook-id"] == str(rows["expired"][1])
    assert received[2].json["message"] == "Hey, Ada Lovelace it's your birthday"
    assert [row[:3] for row in state(db)[:3]] == [(1, "sent", 1), (2, "sent", 11), (3, "sent", 1)]


def test_with_force_a_sent_row_goes_out_again_with_a_new_webhook_id(db, webhook, resend_dag, rows) -> None:
    assert resend_dag.test(run_conf=conf(user_ids=[1], dry_run=False, force=True)).state == "success"

    (request,) = webhook.requests
    assert request.json["user_id"] == 1
    old_webhook_id = rows["sent"][1]
    assert request.headers["webhook-id"] != str(old_webhook_id)
    assert state(db)[0] == (1, "sent", 2, request.headers["webhook-id"])


def test_invalid_future_and_unknown_rows_are_refused_even_with_force(db, webhook, resend_dag, rows) -> None:
    before = state(db)
    run = resend_dag.test(run_conf=conf(user_ids=[4, 5, 99], dry_run=False, force=True))

    assert run.state == "success"
    assert webhook.requests == []
    assert state(db) == before


@pytest.mark.core
def test_a_refused_resend_fails_the_run_after_recording_the_attempt(db, webhook, resend_dag, rows) -> None:
    webhook.always(400)

    run = resend_dag.test(run_conf=conf(user_ids=[2], dry_run=False))

    assert run.state == "failed"
    assert len(webhook.requests) == 1
    assert state(db)[1][:3] == (2, "failed", 11)


def test_a_retried_forced_resend_does_not_send_what_this_request_sent_already() -> None:
    from birthday_pipeline.operate.resend import Action, LookedUp, decide

    requested_at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    request = ResendRequest([1], BIRTHDAY, date(2026, 3, 10), dry_run=False, force=True)
    row = LookedUp(1, True, 7, "sent", requested_at - timedelta(hours=3), requested_at + timedelta(seconds=2),
                   uuid.uuid4(), None, False)
    decision = decide(row, request, requested_at + timedelta(minutes=1), requested_at)
    assert (decision.action, decision.reason) == (
        Action.REFUSE, f"already re-sent by this request at {row.sent_at.isoformat()}")
    earlier = dataclasses.replace(row, sent_at=requested_at - timedelta(hours=1))
    assert decide(earlier, request, requested_at, requested_at).action is Action.RESEND


def test_a_row_being_sent_is_refused_until_its_lease_runs_out_on_the_database_clock(db, webhook, resend_dag,
                                                                                     rows) -> None:
    failed_id, webhook_id = rows["failed"]
    token = "00000000-0000-4000-8000-000000000001"
    with db.cursor() as cursor:  # another task's claim of user 2's row, its lease alive for ten minutes
        cursor.execute("INSERT INTO claim_leases (claim_token, expires_at) VALUES (%s, now() + interval '10 minutes')",
                       (token,))
        cursor.execute("UPDATE notifications SET status = 'sending', claim_token = %s WHERE id = %s",
                       (token, failed_id))
    db.commit()

    assert resend_dag.test(run_conf=conf(user_ids=[2], dry_run=False)).state == "success"
    assert webhook.requests == []

    with db.cursor() as cursor:
        cursor.execute("UPDATE claim_leases SET expires_at = now() - interval '1 second'")
    db.commit()
    assert resend_dag.test(run_conf=conf(user_ids=[2], dry_run=False)).state == "success"
    assert [request.headers["webhook-id"] for request in webhook.requests] == [str(webhook_id)]
    assert state(db)[1][:2] == (2, "sent")
