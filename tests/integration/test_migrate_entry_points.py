"""Every way to migrate the database the ``birthday_db`` connection names, and the check every DAG starts with.

Real Airflow runs (``dag.test()``) against a database of their own, empty at first; the command line and
``make migrate`` (``python -m tools.dev migrate``) as subprocesses with ``AIRFLOW_CONN_BIRTHDAY_DB`` set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest

from birthday_pipeline.schema.files import shipped_migrations
from tests.conftest import per_worker
from tools.local_postgres import airflow_connection, database_url, fresh_database

PROJECT_DIR = Path(__file__).resolve().parents[2]
SHIPPED = [migration.name for migration in shipped_migrations()]
NEEDED = SHIPPED[-1][:4]


@pytest.fixture
def empty_db(monkeypatch: pytest.MonkeyPatch, webhook) -> str:
    """An empty database behind ``birthday_db`` (and a receiver behind ``birthday_webhook``)."""
    url = fresh_database(database_url(os.environ["BIRTHDAY_TEST_DATABASE_URL"], "postgres"),
                         per_worker("birthday_entry_points"))
    monkeypatch.setenv("AIRFLOW_CONN_BIRTHDAY_DB", airflow_connection(url))
    return url


def recorded(url: str) -> list[str]:
    with closing(psycopg2.connect(url)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass('birthday_schema_migrations') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return []
        cursor.execute("SELECT name FROM birthday_schema_migrations ORDER BY name")
        return [row[0] for row in cursor.fetchall()]


def task_states(dag_run) -> dict[str, str | None]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def task_logs(capfd, caplog) -> str:
    """What the tasks of ``dag.test()`` logged: to the terminal, or through logging once Airflow routed it there."""
    text = "".join(capfd.readouterr()) + caplog.text
    caplog.clear()
    return text


def test_every_dag_stops_at_its_first_task_until_birthday_migrate_ran(empty_db: str, capfd, caplog) -> None:
    from tests.airflow_dagbag import DagBag

    bag = DagBag()
    caplog.set_level("INFO")
    sweep = bag.get_dag("birthday_sweep").test()
    assert sweep.state == "failed"
    assert task_states(sweep) == {"check_schema": "failed", "find_due": "upstream_failed",
                                  "send_batch": "upstream_failed", "summarize": "upstream_failed"}
    log = task_logs(capfd, caplog)
    assert (f"birthday_db has no migrations of this pipeline (no table birthday_schema_migrations), this code "
            f"needs {NEEDED}: trigger birthday_migrate") in log
    assert "UndefinedTable" not in log  # no task got as far as a missing table
    for dag_id in ("birthday_notifications", "birthday_resend", "birthday_retention"):
        conf = {"user_ids": [1], "date": "2026-12-15"} if dag_id == "birthday_resend" else None
        run = bag.get_dag(dag_id).test(run_conf=conf)
        assert (run.state, task_states(run)["check_schema"]) == ("failed", "failed"), dag_id

    dry = bag.get_dag("birthday_migrate").test(run_conf={"apply": False})
    assert dry.state == "success" and recorded(empty_db) == []
    assert f"pending  {SHIPPED[0]}" in task_logs(capfd, caplog)

    migrate = bag.get_dag("birthday_migrate").test(run_conf={"apply": True})
    assert migrate.state == "success"
    assert recorded(empty_db) == SHIPPED
    assert bag.get_dag("birthday_sweep").test().state == "success"


def run_python(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=PROJECT_DIR, env=environment, capture_output=True,
                          text=True, timeout=300, check=False)


def test_the_command_line_and_make_migrate_migrate_the_database_birthday_db_names(empty_db: str, tmp_path) -> None:
    environment = {**os.environ, "AIRFLOW_CONN_BIRTHDAY_DB": airflow_connection(empty_db),
                   "AIRFLOW_HOME": str(tmp_path)}
    status = run_python("-m", "birthday_pipeline.schema", "status", environment=environment)
    assert status.returncode == 0, status.stdout[-3000:]
    assert f"birthday_db has no migration of this pipeline, this code needs {NEEDED}" in status.stdout
    assert all(f"pending  {name}" in status.stdout for name in SHIPPED)
    assert recorded(empty_db) == []

    # make migrate: with AIRFLOW_CONN_BIRTHDAY_DB set it migrates that database, not one of its own.
    migrate = run_python("-m", "tools.dev", "migrate", environment={**environment, "BIRTHDAY_POSTGRES_URL": "unused"})
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    assert recorded(empty_db) == SHIPPED
    assert f"{len(SHIPPED)} migrations applied" in migrate.stdout

    again = run_python("-m", "birthday_pipeline.schema", "apply", environment=environment)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"birthday_db is at {NEEDED}, this code needs {NEEDED}" in again.stdout
    assert "0 migrations applied" in again.stdout
