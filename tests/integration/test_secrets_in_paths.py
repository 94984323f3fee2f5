"""A secret in the path or query of an endpoint's URL (Slack and Teams keep theirs in the path) leaks nowhere.

Both connections, ``birthday_webhook`` and ``birthday_alerts``, carry the secret in their path and query and
point at endpoints that fail: a raw server on 127.0.0.1 answering a broken reply, a reset, a 500, a redirect
or nothing at all (a timeout), then a port nobody listens on. Real runs of ``birthday_notifications`` under
``dag.test()``; then the secret is looked for in the task logs (as ``dag.test()`` prints them, the log
records and ``$AIRFLOW_HOME/logs``), every row of every table of the application database, Airflow's XCom,
the alert bodies the endpoint got and the Birthdays page's data.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from birthday_pipeline.edge import alert_channels
from birthday_pipeline.operate.alerts import Alert
from birthday_pipeline.operate.report import Day, day_report, user_report
from birthday_pipeline.settings import Settings
from tests.conftest import insert_due_utc_users, set_settings
from tests.hostile_endpoint import HANG, MALFORMED, RESET, HostileEndpoint, closed_port

SECRET = "XoXoPathSecret42"
USERS = 6
WEBHOOK_PATH = f"/services/T000/B000/{SECRET}?token={SECRET}"
ALERTS_PATH = f"/alerts/{SECRET}?key={SECRET}"


def connections(monkeypatch, webhook_base: str, alerts_base: str) -> None:
    for name, url in (("WEBHOOK", webhook_base + WEBHOOK_PATH), ("ALERTS", alerts_base + ALERTS_PATH)):
        monkeypatch.setenv(f"AIRFLOW_CONN_BIRTHDAY_{name}", json.dumps({"conn_type": "http", "host": url}))


def rotating(*replies):
    """Each request to the webhook path gets the next of ``replies``; the alert path always a broken reply."""
    cycle, lock = itertools.cycle(replies), threading.Lock()

    def answer(path: str):
        if path.startswith("/alerts/"):
            return MALFORMED
        with lock:
            return next(cycle)

    return answer


def stored_text(db) -> str:
    """Every row of every table of the application database, as JSON."""
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                       " AND table_type = 'BASE TABLE'")
        tables = [name for (name,) in cursor.fetchall()]
        dumped = []
        for table in tables:
            cursor.execute(f'SELECT coalesce(json_agg(t)::text, \'\') FROM "{table}" AS t')  # names from the catalog
            dumped.append(cursor.fetchone()[0])
    assert "notification_attempts" in tables and "send_pacing" in tables
    return "\n".join(dumped)


def airflow_text() -> str:
    """Airflow's XCom values and rendered task fields of every run, and every file under $AIRFLOW_HOME/logs."""
    from sqlalchemy import text

    from airflow.utils.session import create_session

    with create_session() as session:
        xcom = session.execute(text("SELECT coalesce(json_agg(x)::text, '') FROM xcom AS x")).scalar()
        rendered = session.execute(
            text("SELECT coalesce(json_agg(r)::text, '') FROM rendered_task_instance_fields AS r")).scalar()
    logs = Path(os.environ["AIRFLOW_HOME"], "logs")
    files = [path.read_text(errors="replace") for path in logs.rglob("*") if path.is_file()] if logs.exists() else []
    return "\n".join([xcom, rendered, *files])


@pytest.fixture
def hourly(app_database_url):
    from tests.airflow_dagbag import DagBag

    return DagBag().get_dag("birthday_notifications")


def run_hourly(hourly, db, monkeypatch):
    instant = insert_due_utc_users(db, USERS)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    set_settings(monkeypatch, request_timeout_seconds="2")
    set_settings(monkeypatch, retry_after_floor_seconds="0")
    return instant, hourly.test(logical_date=instant.replace(minute=0, second=0) - timedelta(hours=1))


def assert_secret_nowhere(db, capfd, caplog, instant, *more: str) -> None:
    printed = "".join(capfd.readouterr())
    page = [day_report(db, Day.of(instant.date(), ZoneInfo("UTC")), Settings()),
            *(user_report(db, user_id, Settings(), datetime.now(UTC)) for user_id in range(1, USERS + 1))]
    places = {"printed task logs": printed, "log records": caplog.text, "database": stored_text(db),
              "airflow": airflow_text(), "page": json.dumps(page, default=str), "more": "\n".join(more)}
    assert "birthday_webhook" in places["database"]  # the errors name the connection instead
    for place, text in places.items():
        assert SECRET not in text, f"the secret is in the {place}"


def test_endpoints_failing_every_way_leak_no_secret_in_their_path(db, hourly, monkeypatch, capfd, caplog) -> None:
    with HostileEndpoint(rotating(MALFORMED, RESET, 500, HANG, 307)) as endpoint:
        connections(monkeypatch, endpoint.url, endpoint.url)
        with caplog.at_level(logging.INFO):
            instant, run = run_hourly(hourly, db, monkeypatch)
        received = endpoint.requests

    assert run.state == "failed"
    alert_bodies = [request.body.decode() for request in received if request.path.startswith("/alerts/")]
    assert alert_bodies and all(json.loads(body)["event"] == "notifications_failed" for body in alert_bodies)
    with db.cursor() as cursor:
        cursor.execute("SELECT DISTINCT error FROM notification_attempts ORDER BY 1")
        errors = [error for (error,) in cursor.fetchall()]
    assert errors == sorted([
        "ClientResponseError: no valid HTTP answer from the endpoint of connection birthday_webhook",
        "ClientOSError: connection failed to the endpoint of connection birthday_webhook",
        "HTTP 500",
        "TimeoutError: no answer within the timeout from the endpoint of connection birthday_webhook",
        "HTTP 307: redirect to another URL is not followed",
    ]), errors
    assert_secret_nowhere(db, capfd, caplog, instant, *alert_bodies)


def test_endpoints_refusing_connections_leak_no_secret_in_their_path(db, hourly, monkeypatch, capfd, caplog) -> None:
    with closed_port() as port, caplog.at_level(logging.INFO):
        closed = f"http://127.0.0.1:{port}"
        connections(monkeypatch, closed, closed)
        instant, run = run_hourly(hourly, db, monkeypatch)

    assert run.state == "failed"
    with db.cursor() as cursor:
        cursor.execute("SELECT DISTINCT last_error FROM notifications")
        assert cursor.fetchall() == [
            ("ClientConnectorError: cannot connect to the endpoint of connection birthday_webhook",)]
    assert_secret_nowhere(db, capfd, caplog, instant)


@pytest.mark.parametrize(("reply", "error"), [
    (None, "Alert recovered not sent: ConnectionError: connection failed to the endpoint of connection"
           " birthday_alerts"),
    (MALFORMED, "Alert recovered not sent: ConnectionError: connection failed to the endpoint of connection"
                " birthday_alerts"),
    (RESET, "Alert recovered not sent: ConnectionError: connection failed to the endpoint of connection"
            " birthday_alerts"),
    (HANG, "Alert recovered not sent: ReadTimeout: no answer within the timeout from the endpoint of connection"
           " birthday_alerts"),
    (500, "Alert recovered not sent: the endpoint of connection birthday_alerts answered HTTP 500"),
    (307, "Alert recovered not sent: the endpoint of connection birthday_alerts answered HTTP 307: redirect to"
          " another URL is not followed"),
])
def test_an_alert_that_fails_names_its_connection_never_its_url(monkeypatch, caplog, reply, error) -> None:
    monkeypatch.setattr(alert_channels, "ALERT_TIMEOUT_SECONDS", 1)
    alert = Alert("recovered", "subject", "text", {})
    # INFO, a task's log level: at DEBUG urllib3 logs each request line, path and query included.
    with HostileEndpoint(lambda path: reply) as endpoint, closed_port() as closed, caplog.at_level(logging.INFO):
        base = endpoint.url if reply is not None else f"http://127.0.0.1:{closed}"
        connections(monkeypatch, base, base)
        with pytest.raises(alert_channels.AlertNotSent) as raised:
            alert_channels._post_alert("birthday_alerts", alert)

    assert str(raised.value) == error
    assert SECRET not in "".join(traceback.format_exception(raised.value))  # as the task log would show it
    assert SECRET not in caplog.text
