"""Secrets stay out of the database and the logs, and a secret that cannot sign stops a task before it claims.

Real PostgreSQL, a real receiver on 127.0.0.1, the send task's body (``sending.send_batch``) and a real run of
``birthday_notifications`` under ``dag.test()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

import pytest

from birthday_pipeline.deliver.delivery import RetryableDeliveryError
from birthday_pipeline.edge import sending
from birthday_pipeline.plan.planning import ReleaseBatch
from tests.conftest import insert_due_utc_users, set_settings


def webhook_connection(monkeypatch, host: str, password: str | None = None) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BIRTHDAY_WEBHOOK",
                       json.dumps({"conn_type": "http", "host": host, **({"password": password} if password else {})}))


def test_a_secret_that_is_not_a_whsec_key_fails_the_task_before_anything_is_claimed(
        db, receiver, app_database_url, monkeypatch, capfd) -> None:
    from tests.airflow_dagbag import DagBag

    secret = "whsec_this is not base64!"
    instant = insert_due_utc_users(db, 3)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    webhook_connection(monkeypatch, receiver.url, secret)
    hourly = DagBag().get_dag("birthday_notifications")

    run = hourly.test(logical_date=instant.replace(minute=0, second=0) - timedelta(hours=1))

    assert run.state == "failed"
    assert receiver.requests == []
    with db.cursor() as cursor:
        cursor.execute("SELECT DISTINCT status, attempts, claim_token FROM notifications")
        assert cursor.fetchall() == [("scheduled", 0, None)]
        cursor.execute("SELECT count(*) FROM claim_leases")
        assert cursor.fetchone() == (0,)
    logged = "".join(capfd.readouterr())  # the task's log, as dag.test() prints it
    assert "Connection 'birthday_webhook': its password is not a usable webhook signing secret" in logged
    assert "this is not base64" not in logged


def test_pacing_keys_the_endpoint_by_its_hash_and_errors_name_its_connection_not_its_url(
        db, receiver, app_database_url, monkeypatch, caplog) -> None:
    """An endpoint whose URL holds a password and a token, paced, and failing with an error that quotes it."""
    instant = insert_due_utc_users(db, 4)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    set_settings(monkeypatch, max_requests_per_second="100")
    # aiohttp refuses the scheme, quoting the whole URL in its error.
    endpoint = f"ftp://hook:s3cret-password@127.0.0.1:{receiver.url.rsplit(':', 1)[1]}/birthdays?token=s3cret-token"
    webhook_connection(monkeypatch, endpoint)

    with caplog.at_level(logging.INFO), pytest.raises(RetryableDeliveryError):
        sending.send_batch(ReleaseBatch(instant, 1, 4, 4).to_json(), "birthday_db", "birthday_webhook",
                           from_sweep=False)

    with db.cursor() as cursor:
        cursor.execute("SELECT endpoint_sha256 FROM send_pacing")
        assert cursor.fetchall() == [(hashlib.sha256(endpoint.encode()).hexdigest(),)]
        cursor.execute("SELECT DISTINCT error FROM notification_attempts")
        errors = [error for (error,) in cursor.fetchall()]
        cursor.execute("SELECT DISTINCT last_error FROM notifications")
        last_errors = [error for (error,) in cursor.fetchall()]
    assert errors == last_errors == ["NonHttpUrlClientError: no http(s) URL for the endpoint of connection"
                                     " birthday_webhook"]
    for text in (caplog.text, *errors):
        assert "s3cret" not in text
