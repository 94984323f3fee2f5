"""A task reads the pipeline's settings with one Variable lookup, counted by a real secrets backend.

Airflow asks the configured ``[secrets] backend`` first for every Variable a task reads, so a backend that
finds nothing and records each key counts every lookup the sweep's tasks make under ``dag.test()``. The
settings themselves come from the metadata database, as on a deployment.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from birthday_pipeline.settings import SETTINGS_ENVIRONMENT, SETTINGS_VARIABLE
from tests.counting_secrets import CountingSecretsBackend


@pytest.fixture
def counted_lookups(monkeypatch) -> type[CountingSecretsBackend]:
    from airflow.sdk.configuration import clear_secrets_backends_cache

    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "tests.counting_secrets.CountingSecretsBackend")
    clear_secrets_backends_cache()
    yield CountingSecretsBackend
    monkeypatch.delenv("AIRFLOW__SECRETS__BACKEND")
    clear_secrets_backends_cache()


@pytest.fixture
def stored_variables():
    """Variables stored in the metadata database for one test, deleted afterwards."""
    from airflow.models import Variable

    stored: list[str] = []

    def store(name: str, value: str) -> None:
        Variable.set(name, value)
        stored.append(name)

    yield store
    for name in stored:
        Variable.delete(name)


def due_users(db, instant: datetime, count: int) -> None:
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO users (id, first_name, last_name, birthday, timezone)"
                       " SELECT id, 'Ada', 'Lovelace', %s, 'UTC' FROM generate_series(1, %s) AS id",
                       (instant.date().replace(year=1990), count))
    db.commit()


def test_each_task_of_a_sweep_reads_the_settings_in_one_lookup(
        db, webhook, counted_lookups, stored_variables, monkeypatch, caplog) -> None:
    from tests.airflow_dagbag import DagBag

    instant = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    due_users(db, instant, 2)
    # One user a batch: two users, two batches, two send tasks.
    settings = {"send_local_time": instant.strftime("%H:%M:%S"), "max_lateness_hours": "1", "batch_size": 1}
    monkeypatch.delenv(SETTINGS_ENVIRONMENT, raising=False)  # the environment would win over the database
    stored_variables(SETTINGS_VARIABLE, json.dumps(settings))
    # A separate Variable of an earlier version is no longer looked up, nor applied.
    stored_variables("birthday_batch_size", "7")

    counted_lookups.forget()  # storing a Variable looks it up too
    with caplog.at_level(logging.INFO, logger="birthday_pipeline.settings"):
        dag_run = DagBag().get_dag("birthday_sweep").test()

    assert dag_run.state == "success"
    # The stored send time applied: both users were planned at it and sent, one batch each.
    assert sorted(request.json["user_id"] for request in webhook.requests) == [1, 2]
    tasks = 5  # check_schema (the users relation), find_due, send_batch twice, summarize
    settings_lookups = counted_lookups.task_lookups
    # Each lookup of a task is one request the execution API answers from the metadata database.
    assert len(counted_lookups.server_lookups) <= len(settings_lookups)
    assert settings_lookups == [SETTINGS_VARIABLE] * tasks
    assert not [record for record in caplog.records if SETTINGS_VARIABLE in record.getMessage()]
