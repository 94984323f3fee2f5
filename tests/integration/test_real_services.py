"""End to end on real Airflow services: scheduler, dag-processor, triggerer and API server as processes.

The hourly DAG releases a batch due about a minute and a half ahead through deferred sensors on the real
triggerer, and the sweep picks up a user whose instant passed an hour ago. Under CeleryExecutor two named
workers share the batches. What the receiver got is the verdict.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from birthday_pipeline.settings import SETTINGS_ENVIRONMENT
from tests.conftest import WEBHOOK_SECRET, per_worker, settings_text
from tests.real_services import airflow_cli, airflow_services, redis_url
from tools.local_postgres import database_url, fresh_database, sqlalchemy_url

pytestmark = pytest.mark.long(minutes=4)  # two executors' services, each with a batch due a minute and a half ahead

HOURLY_USERS = range(1, 9)  # four batches of two, due ahead
OVERDUE_USERS = range(101, 103)  # at UTC+1: the same local time came an hour ago
NAME = ("Gwendolyn", "Featherstonehaugh")  # distinctive, so the log check below cannot miss them


def assert_logs_hold_no_personal_data_or_secrets(log_dir: Path, born: date) -> None:
    """Every task and service log of the run: no name, birthday, message text or webhook secret."""
    logs = {path: path.read_text(encoding="utf-8", errors="replace") for path in log_dir.rglob("*.log")}
    task_logs = [text for path, text in logs.items() if "task_id=" in str(path)]
    assert sum("Batch ids" in text for text in task_logs) >= 4, "the send tasks' logs were not found"
    secret_key = WEBHOOK_SECRET.removeprefix("whsec_")
    for forbidden in (*NAME, born.isoformat(), "it's your birthday", secret_key):
        leaks = [str(path) for path, text in logs.items() if forbidden in text]
        assert not leaks, f"{forbidden!r} appears in {leaks}"


@pytest.mark.parametrize("executor", ["LocalExecutor", "CeleryExecutor"])
def test_real_services_release_at_the_instant_and_sweep_the_overdue(db, webhook, tmp_path, executor: str) -> None:
    celery = executor == "CeleryExecutor"
    if celery and os.environ.get("BIRTHDAY_TEST_CELERY") == "0":
        pytest.skip("BIRTHDAY_TEST_CELERY=0: this machine has no Redis (the README's documented opt-out)")
    instant = (datetime.now(UTC) + timedelta(seconds=100)).replace(microsecond=0)
    born = instant.date().replace(year=1990)
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO users (id, first_name, last_name, birthday, timezone) VALUES (%s, %s, %s, %s, %s)",
            [(user_id, *NAME, born, "UTC") for user_id in HOURLY_USERS]
            + [(user_id, *NAME, born, "Etc/GMT-1") for user_id in OVERDUE_USERS],
        )
    db.commit()

    metadata_url = fresh_database(database_url(os.environ["BIRTHDAY_TEST_DATABASE_URL"], "postgres"),
                                  per_worker(f"airflow_e2e_{executor.lower()}"))
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(metadata_url),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        SETTINGS_ENVIRONMENT: settings_text(os.environ.get(SETTINGS_ENVIRONMENT),
                                            send_local_time=instant.strftime("%H:%M:%S"), batch_size=2),
    }
    if celery:
        environment |= {
            "AIRFLOW__CELERY__BROKER_URL": redis_url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
            # A queue of this run's own: another test run on the same Redis neither takes nor drops its tasks.
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"birthday_e2e_{uuid.uuid4().hex}",
        }

    with airflow_services(environment, tmp_path, celery_workers=2 if celery else 0):
        airflow_cli(environment, "dags", "trigger", "birthday_sweep")
        # Any moment of the hour before the instant anchors the run that owns it; off the whole hour, so the
        # scheduler's own run for that hour (created when the services start) does not clash with it.
        hourly_logical_date = instant - timedelta(hours=1, microseconds=-1)
        airflow_cli(environment, "dags", "trigger", "birthday_notifications", "--logical-date",
                    hourly_logical_date.isoformat())
        expected = len(HOURLY_USERS) + len(OVERDUE_USERS)
        deadline = instant.timestamp() + 120
        while len(webhook.requests) < expected and time.time() < deadline:
            time.sleep(1)

    received = webhook.requests
    assert sorted(request.json["user_id"] for request in received) == [*HOURLY_USERS, *OVERDUE_USERS]
    released = [request for request in received if request.json["user_id"] in HOURLY_USERS]
    assert min(request.received_at for request in released) >= instant.timestamp()
    lateness = {}
    for request in released:
        batch = (request.json["user_id"] - 1) // 2
        lateness[batch] = min(lateness.get(batch, 1e9), request.received_at - instant.timestamp())
    print(f"{executor}: first request of each batch after the instant: "
          + ", ".join(f"{seconds:.3f} s" for _, seconds in sorted(lateness.items())))
    with db.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM notifications GROUP BY status")
        assert dict(cursor.fetchall()) == {"sent": expected}
    assert_logs_hold_no_personal_data_or_secrets(tmp_path, born)
    with psycopg2.connect(metadata_url) as metadata, metadata.cursor() as cursor:
        # The hand-triggered sweep (no logical date) and the hourly run did their work on the first try.
        cursor.execute("SELECT dag_id, task_id, state, try_number FROM task_instance"
                       " WHERE try_number > 1 OR state IN ('failed', 'up_for_retry')")
        assert cursor.fetchall() == []
    if celery:
        with psycopg2.connect(metadata_url) as metadata, metadata.cursor() as cursor:
            cursor.execute("SELECT hostname, count(*) FROM task_instance"
                           # Set when a task starts; a batch may still be reporting success as services stop.
                           " WHERE task_id = 'release.send_batch' AND hostname <> '' GROUP BY hostname")
            batches_by_worker = dict(cursor.fetchall())
        print(f"batches by worker: {batches_by_worker}")
        assert set(batches_by_worker) == {"worker-1", "worker-2"}
