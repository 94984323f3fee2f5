"""One instant with more users than ``[core] max_map_length`` batches of ``batch_size`` hold, through ``dag.test()``
of the hourly DAG and of the sweep: the mapped groups expand (Airflow refuses more mapped tasks than
``max_map_length``), and every user gets one message.

``max_map_length`` is lowered to 3 for the test, so that 6,001 users at the default ``batch_size`` (2,000) need
4 batches: the same arithmetic as 2.7 M users at one instant against the default 1,024.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import set_settings

MAX_MAP_LENGTH = 3
USERS = 2000 * MAX_MAP_LENGTH + 1


@pytest.fixture
def one_crowded_instant(db, webhook, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """USERS users in UTC whose birthday message was due at the last whole hour but one; that hour."""
    instant = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    set_settings(monkeypatch, send_local_time=f"{instant:%H:%M}")
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", str(MAX_MAP_LENGTH))
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO users (id, first_name, last_name, birthday, timezone)"
                       " SELECT id, 'F', 'L', %s, 'UTC' FROM generate_series(1, %s) AS id",
                       (instant.date().replace(year=1990), USERS))
    db.commit()
    return instant


def mapped_senders(db, dag_id: str) -> int:
    """How many mapped send tasks of ``dag_id`` recorded attempts."""
    with db.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT (run_id, map_index)) FROM notification_attempts WHERE dag_id = %s",
                       (dag_id,))
        return cursor.fetchone()[0]


def assert_every_user_got_one_message(webhook) -> None:
    received = Counter(request.json["user_id"] for request in webhook.requests)
    assert (len(received), set(received.values())) == (USERS, {1})


def test_the_hourly_run_releases_more_rows_than_max_map_length_batches_of_batch_size(db, webhook,
                                                                                  one_crowded_instant) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag("birthday_notifications")
    dag_run = dag.test(logical_date=one_crowded_instant - timedelta(hours=1))

    assert dag_run.state == "success"
    assert_every_user_got_one_message(webhook)
    assert 1 < mapped_senders(db, "birthday_notifications") <= MAX_MAP_LENGTH


def test_the_sweep_sends_more_due_rows_than_max_map_length_batches_of_batch_size(db, webhook,
                                                                              one_crowded_instant) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag("birthday_sweep")
    dag_run = dag.test()

    assert dag_run.state == "success"
    assert_every_user_got_one_message(webhook)
    assert 1 < mapped_senders(db, "birthday_sweep") <= MAX_MAP_LENGTH
