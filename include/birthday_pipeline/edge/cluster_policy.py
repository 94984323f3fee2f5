"""An Airflow cluster policy that runs the pipeline's sending tasks in a pool of their own (opt-in).

Airflow applies cluster policies from ``airflow_local_settings.py``; a deployment that wants the pool creates it
(``airflow pools set birthday_send 16 "birthday-pipeline send tasks"``) and puts this in that file::

    from birthday_pipeline.edge.cluster_policy import task_policy  # noqa: F401

(a deployment with a ``task_policy`` of its own calls this one from it). The DAGs name no pool themselves, so
that they run unchanged where the pool does not exist (``make run``, the tests, docker compose).
"""

from __future__ import annotations

from typing import Any

SEND_POOL = "birthday_send"
# (dag_id, task_id) of every task that sends webhooks.
SENDING_TASKS = frozenset({
    ("birthday_notifications", "release.send_batch"),
    ("birthday_sweep", "send_batch"),
    ("birthday_resend", "resend"),
})


def task_policy(task: Any) -> None:
    """Put a sending task of the pipeline into ``birthday_send``; leave every other task as it is."""
    if (task.dag_id, task.task_id) in SENDING_TASKS:
        task.pool = SEND_POOL
