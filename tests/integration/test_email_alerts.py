"""An alert by email: connection ``birthday_alerts`` of type smtp, a real SMTP server on 127.0.0.1 (aiosmtpd),
and a real hourly run (``dag.test()``) whose only message the webhook refuses."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from birthday_pipeline.plan.planning import User
from tests.conftest import insert_users, set_settings
from tests.real_services import free_port


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def inbox(monkeypatch):
    found = Inbox()
    controller = Controller(found, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_BIRTHDAY_ALERTS", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": controller.port,
        "extra": {"to": "oncall@example.com", "from_email": "birthdays@example.com", "disable_tls": True,
                  "disable_ssl": True, "retry_limit": 0}}))
    try:
        yield found
    finally:
        controller.stop()


def test_a_refused_message_is_reported_by_one_email_without_personal_data(db, webhook, inbox, monkeypatch) -> None:
    from tests.airflow_dagbag import DagBag

    with db.cursor() as cursor:
        cursor.execute("TRUNCATE open_alerts")
    db.commit()
    instant = (datetime.now(UTC) - timedelta(seconds=20)).replace(microsecond=0)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    insert_users(db, [User(1, instant.date().replace(year=1990), "UTC", "Grace", "Hopper")])
    webhook.always(400)

    run = DagBag().get_dag("birthday_notifications").test(
        logical_date=instant.replace(minute=0, second=0) - timedelta(hours=1))

    assert run.state == "failed"
    (recipients, message), = inbox.messages
    assert recipients == ["oncall@example.com"] and message["From"] == "birthdays@example.com"
    assert message["Subject"] == (f"birthday-pipeline: run {run.run_id} of birthday_notifications ended with"
                                  " 1 notification that will not be delivered")
    body = "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if part.get_content_type() == "text/html")
    assert "birthday: failed 1" in body and "refused (HTTP 400): 1" in body
    for personal in ("Grace", "Hopper", "1990"):
        assert personal not in body and personal not in message["Subject"]
