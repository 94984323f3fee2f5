"""Session set-up for every test: one PostgreSQL server, a fresh application database, an Airflow home.

Airflow reads its configuration when it is first imported, so the environment is set in
``pytest_configure``, before any test module is collected. The server is the one named by
``BIRTHDAY_POSTGRES_URL`` or, without it, an embedded PostgreSQL under ``.local/postgres-test``.

Under ``pytest -n N`` (pytest-xdist, as ``make test`` runs it) each worker is a process of its own with its
own databases (``per_worker``), Airflow home and ports; the controller migrates Airflow's metadata database
once and every worker starts from a copy of it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.webhook_receiver import WebhookReceiver, receiver  # noqa: F401 - the receiver fixture

PROJECT_DIR = Path(__file__).resolve().parent.parent
APP_DATABASE = "birthday_test"
# The matrix (tools/matrix.py) gives each Airflow version its own metadata database on the same server.
AIRFLOW_DATABASE = os.environ.get("BIRTHDAY_TEST_AIRFLOW_DATABASE", "airflow_test")
# pytest-xdist names its workers gw0, gw1, ...; a run without -n has none.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# The PostgreSQL server of the run, which the controller hands to its workers.
TEST_SERVER_ENV = "BIRTHDAY_TEST_SERVER_URL"


def per_worker(name: str) -> str:
    """``name`` for this test process: a database or data directory of its own under each xdist worker
    (``birthday_test_gw1``), the name itself in a run without workers."""
    return f"{name}_{XDIST_WORKER}" if XDIST_WORKER else name


def pytest_configure(config: pytest.Config) -> None:
    from tools import local_postgres

    if XDIST_WORKER:
        # The controller's server: workers starting the embedded one at once would race on its handle file.
        server = os.environ[TEST_SERVER_ENV]
    else:
        server = local_postgres.server_url(local_postgres.LOCAL_DIR / "postgres-test")
        os.environ[TEST_SERVER_ENV] = server
    airflow_url = local_postgres.ensure_database(server, AIRFLOW_DATABASE)
    if XDIST_WORKER:
        # The controller migrated it before starting the workers.
        airflow_url = local_postgres.copy_database(server, AIRFLOW_DATABASE, per_worker(AIRFLOW_DATABASE))
    app_url = local_postgres.fresh_database(server, per_worker(APP_DATABASE))
    airflow_home = Path(tempfile.mkdtemp(prefix="birthday-airflow-home-"))
    # One key for the whole run, which the workers inherit: otherwise each process that first writes an Airflow
    # home's airflow.cfg makes up a key, and a Variable one process stores is unreadable in another.
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    os.environ.update(
        {
            "BIRTHDAY_TEST_DATABASE_URL": app_url,
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": local_postgres.sqlalchemy_url(airflow_url),
            "AIRFLOW_CONN_BIRTHDAY_DB": local_postgres.airflow_connection(app_url),
        }
    )
    if XDIST_WORKER:
        return
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if migrate.returncode != 0:
        raise pytest.UsageError(f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest test files first (their ``long(minutes=N)`` marker), each file's tests in their own order: the
    workers start on the slowest files at once instead of finishing the run with one of them alone."""

    def minutes(item: pytest.Item) -> float:
        marker = item.get_closest_marker("long")
        return float(marker.kwargs["minutes"]) if marker else 0.0

    items.sort(key=minutes, reverse=True)


def settings_text(base: str | None = None, **values: Any) -> str:
    """The text of ``birthday_settings``: the settings in ``base`` (that text, or None) with ``values`` over them."""
    return json.dumps({**(json.loads(base) if base else {}), **values})


def set_settings(environment: pytest.MonkeyPatch, **values: Any) -> None:
    """Set keys of ``birthday_settings`` for one test, as Airflow reads it from the environment
    (``AIRFLOW_VAR_BIRTHDAY_SETTINGS``), over the keys already set there:
    ``set_settings(monkeypatch, batch_size=2)``."""
    from birthday_pipeline.settings import SETTINGS_ENVIRONMENT

    environment.setenv(SETTINGS_ENVIRONMENT, settings_text(os.environ.get(SETTINGS_ENVIRONMENT), **values))


def insert_due_utc_users(db: Any, count: int) -> datetime:
    """Users 1..``count`` in UTC, each with a notification due one second ago; the instant it was due."""
    instant = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=0)
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO users (id, first_name, last_name, birthday, timezone)"
                       " SELECT id, 'F', 'L', %s, 'UTC' FROM generate_series(1, %s) AS id",
                       (instant.date().replace(year=1990), count))
        cursor.execute("INSERT INTO notifications (user_id, occasion_date, send_at) SELECT id, %s, %s FROM users",
                       (instant.date(), instant))
    db.commit()
    return instant


def insert_users(db: Any, users: Any) -> None:
    """Insert ``birthday_pipeline.plan.planning.User`` rows, with the dates of every occasion."""
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO users (id, first_name, last_name, birthday, timezone, hired_on)"
            " VALUES (%(id)s, %(first_name)s, %(last_name)s, %(birthday)s, %(timezone)s, %(hired_on)s)",
            [{**dataclasses.asdict(user), "hired_on": user.other_dates.get("hired_on")} for user in users],
        )
    db.commit()


@pytest.fixture(scope="session")
def app_database_url() -> str:
    """The test application database, migrated once per session."""
    import psycopg2

    from birthday_pipeline.schema.runner import apply_migrations

    url = os.environ["BIRTHDAY_TEST_DATABASE_URL"]
    conn = psycopg2.connect(url)
    try:
        apply_migrations(conn)
    finally:
        conn.close()
    return url


@pytest.fixture
def db(app_database_url: str) -> Iterator[Any]:
    """A connection to the application database, emptied before the test."""
    import psycopg2

    conn = psycopg2.connect(app_database_url)
    with conn.cursor() as cursor:
        cursor.execute("TRUNCATE users, notifications, claim_leases, send_pacing, webhook_endpoints"
                       " RESTART IDENTITY CASCADE")
    conn.commit()
    try:
        yield conn
    finally:
        conn.close()


WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"birthday-pipeline-test-signing-key").decode()


@pytest.fixture
def webhook(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> WebhookReceiver:  # noqa: F811
    """A real receiver on 127.0.0.1 behind the ``birthday_webhook`` connection, signing with a secret."""
    connection = {"conn_type": "http", "host": receiver.url, "password": WEBHOOK_SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_BIRTHDAY_WEBHOOK", json.dumps(connection))
    return receiver


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """A list for the processes a test starts (senders): each is killed, with what it started, when the test
    ends, so none goes on sending or writing to this worker's databases while its next test runs."""
    from tests.real_services import stop_processes

    started: list[subprocess.Popen] = []
    yield started
    stop_processes(started, grace_seconds=0)
