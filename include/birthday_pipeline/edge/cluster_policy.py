"""An Airflow cluster policy that runs the pipeline's sending tasks in a pool of their own (opt-in).

Airflow applies cluster policies from ``airflow_local_settings.py``; a deployment that wants the pool creates it
(``airflow pools set birthday_send 16 "birthday-pipeline send tasks"``) and puts this in that file::

    from birthday_pipeline.edge.cluster_policy import task_policy  # noqa: F401

(a deployment with a ``task_policy`` of its own calls this one from it). The DAGs name no pool themselves, so
that they run unchanged where the pool does not exist (``make run``, the tests, docker compose).
"""

from __future__ import annotations

from typing import Any

from birthday_pipeline.ids import (
    HOURLY_DAG, RELEASE_GROUP, RESEND_DAG, RESEND_TASK, SEND_BATCH_TASK, SEND_POOL, SWEEP_DAG,
)

# (dag_id, task_id) of every task that sends webhooks.
SENDING_TASKS = frozenset({
    (HOURLY_DAG, f"{RELEASE_GROUP}.{SEND_BATCH_TASK}"),
    (SWEEP_DAG, SEND_BATCH_TASK),
    (RESEND_DAG, RESEND_TASK),
})


def task_policy(task: Any) -> None:
    """Put a sending task of the pipeline into ``birthday_send``; leave every other task as it is."""
    if (task.dag_id, task.task_id) in SENDING_TASKS:
        task.pool = SEND_POOL
