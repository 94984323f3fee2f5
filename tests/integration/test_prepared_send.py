"""A send task claims and prepares its batch ``prepare_seconds`` before the instant and posts at it: nothing
else takes the claimed rows meanwhile, and what changes between the claim and the instant is honoured. Real
PostgreSQL, a real receiver on 127.0.0.1, the send task's body (``deliver_batch``) in a thread of the test."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from birthday_pipeline.deliver.delivery import DeliverySummary, deliver_batch
from birthday_pipeline.operate.resend import ResendRequest, resend
from birthday_pipeline.plan.planning import ReleaseBatch, Window, plan_window
from birthday_pipeline.settings import Settings
from tests.integration.test_delivery import add_users, rows, sender_for, whole_hour

PREPARE_SECONDS = 5


def claimed_by(db, deadline: datetime) -> datetime:
    """Wait for the batch's rows to be claimed (``sending``), at the latest by ``deadline``; when it was seen."""
    while datetime.now(UTC) < deadline:
        db.rollback()
        with db.cursor() as cursor:
            cursor.execute("SELECT count(*) FILTER (WHERE status = 'sending'), count(*) FROM notifications")
            sending, total = cursor.fetchone()
        if sending == total:
            return datetime.now(UTC)
        time.sleep(0.05)
    raise AssertionError(f"the batch was not claimed by {deadline}")


def test_claimed_before_the_instant_posted_at_it_and_changes_in_between_honoured(db, webhook,
                                                                                 app_database_url) -> None:
    instant = (datetime.now(UTC) + timedelta(seconds=PREPARE_SECONDS + 4)).replace(microsecond=0)
    settings = Settings(send_local_time=instant.time(), prepare_seconds=PREPARE_SECONDS)
    born = instant.date().replace(year=1990)
    add_users(db, [(user_id, "Rene", "L", born, "UTC") for user_id in (1, 2, 3, 4)])
    plan_window(db, Window(whole_hour(instant), whole_hour(instant) + timedelta(hours=1)), settings)
    batch = ReleaseBatch(instant, 1, 4, 4)
    sender = sender_for(webhook, app_database_url, settings)
    summaries: list[DeliverySummary] = []
    task = threading.Thread(target=lambda: summaries.append(deliver_batch(sender.connect(), batch, sender)))
    task.start()
    try:
        seen = claimed_by(db, instant)
        assert seen < instant - timedelta(seconds=1), "claimed too late to leave room for the changes below"
        assert webhook.requests == []

        # The claim is the task's: a second copy of it, the sweep and a forced resend all find nothing to take.
        other = sender_for(webhook, app_database_url, settings)
        assert deliver_batch(other.connect(), batch, other).claimed == 0
        assert deliver_batch(other.connect(), ReleaseBatch(None, 1, 4, 4), other).claimed == 0
        forced = ResendRequest([1, 2, 3, 4], settings.occasion_registry.named("birthday"), instant.date(),
                               dry_run=False, force=True)
        assert resend(db, forced, settings, other, datetime.now(UTC)).delivery is None

        # Changes after the claim, before the instant.
        with db.cursor() as cursor:
            cursor.execute("DELETE FROM users WHERE id = 1")
            cursor.execute("UPDATE users SET timezone = 'Asia/Tokyo' WHERE id = 2")
            cursor.execute("UPDATE users SET first_name = 'Renée' WHERE id = 3")
        db.commit()
        assert datetime.now(UTC) < instant - timedelta(seconds=0.5), "the changes came too late to be looked at"
    finally:
        task.join(timeout=120)
    (summary,) = summaries

    assert (summary.claimed, summary.sent, summary.skipped) == (4, 2, 2)
    received = sorted(webhook.requests, key=lambda request: request.json["user_id"])
    assert [(request.json["user_id"], request.json["message"]) for request in received] == [
        (3, "Hey, Renée L it's your birthday"), (4, "Hey, Rene L it's your birthday")]
    assert min(request.received_at for request in received) >= instant.timestamp()
    assert rows(db, "user_id, status, send_at, last_error") == [
        (1, "cancelled", instant, "user no longer exists"),
        (2, "scheduled", instant - timedelta(hours=9), None),  # re-planned to 09:00 in Tokyo
        (3, "sent", instant, None),
        (4, "sent", instant, None),
    ]
