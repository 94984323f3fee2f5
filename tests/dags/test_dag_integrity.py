"""Every DAG loads, is configured as the house style asks, and touches nothing while it is parsed."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.core

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_DAG_IDS = {"birthday_endpoint", "birthday_migrate", "birthday_notifications", "birthday_resend",
                    "birthday_retention", "birthday_sweep"}
DAG_FILES = sorted(DAGS_DIR.glob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    from tests.airflow_dagbag import DagBag

    return DagBag(dag_folder=DAGS_DIR)


def test_dagbag_loads_exactly_the_expected_dags(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS


def test_every_dag_has_tags_docs_an_owner_and_retries_five_seconds_apart(dagbag) -> None:
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert dag.doc_md and dag.doc_md.strip(), dag.dag_id
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), (dag.dag_id, task.task_id)
            assert task.retries >= 2, (dag.dag_id, task.task_id)
            assert task.retry_delay == timedelta(seconds=5), (dag.dag_id, task.task_id)


def test_no_task_unrolls_its_return_value_into_one_xcom_per_key(dagbag) -> None:
    # A task annotated ``-> dict`` makes Airflow infer multiple_outputs=True and store every key as an XCom of its
    # own besides return_value: the tasks say multiple_outputs=False, and stay setup or teardown tasks where they
    # were (@setup / @teardown over @task(multiple_outputs=False)).
    unrolled = [(dag.dag_id, task.task_id) for dag in dagbag.dags.values() for task in dag.tasks
                if getattr(task, "multiple_outputs", False)]
    assert unrolled == []
    roles = {(dag.dag_id, task.task_id): (task.is_setup, task.is_teardown) for dag in dagbag.dags.values()
             for task in dag.tasks if task.is_setup or task.is_teardown}
    assert roles == {(dag_id, task_id): role for dag_id in ("birthday_notifications", "birthday_sweep")
                     for task_id, role in (("check_schema", (True, False)), ("summarize", (False, True)))}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[path.name for path in DAG_FILES])
def test_every_dag_sets_catchup_explicitly(dag_file: Path) -> None:
    keywords = {
        keyword.arg
        for node in ast.walk(ast.parse(dag_file.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        for keyword in node.keywords
    }
    assert {"catchup", "schedule", "start_date", "default_args", "tags"} <= keywords


# Parses one DAG file with every database and the network out of reach: connecting anywhere raises.
PARSE_OFFLINE = """
import socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("a DAG file opened a network connection while being parsed")
socket.socket.connect = refuse
socket.create_connection = refuse
from tests.airflow_dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(sorted(bag.dag_ids))
"""


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[path.name for path in DAG_FILES])
def test_parsing_a_dag_file_touches_no_database(dag_file: Path, tmp_path: Path) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:9/nowhere"
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": unreachable.replace("postgresql", "postgresql+psycopg2"),
        "AIRFLOW_CONN_BIRTHDAY_DB": unreachable,
        "BIRTHDAY_TEST_DATABASE_URL": unreachable,
        "PYTHONPATH": str(DAGS_DIR.parent),
    }
    parsed = subprocess.run(
        [sys.executable, "-c", PARSE_OFFLINE, str(dag_file)],
        env=environment, capture_output=True, text=True, timeout=120, check=False,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    assert parsed.stdout.strip().splitlines()[-1] != "[]"
