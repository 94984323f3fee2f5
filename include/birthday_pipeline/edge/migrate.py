"""The task body of the ``birthday_migrate`` DAG: list the migrations and apply the pending ones."""

from __future__ import annotations

import logging
from typing import Any

from birthday_pipeline.edge.airflow_versions import task_exception

log = logging.getLogger(__name__)


def migrate(conn_id: str, *, apply: bool) -> dict[str, Any]:
    """List the migrations of the database of ``conn_id`` and, with ``apply``, run the pending ones.

    A migration whose file changed after it was applied fails the task without retries: only a code change
    mends that. Anything else (a lock that could not be had in time, a lost connection) is retried.
    """
    from birthday_pipeline.schema.runner import ChangedMigrationError, migrate_connection
    from birthday_pipeline.schema.status import describe

    try:
        before, ran = migrate_connection(conn_id, apply=apply)
    except ChangedMigrationError as error:
        raise task_exception("AirflowFailException")(str(error)) from error
    for line in describe(before, conn_id=conn_id):
        log.info("%s", line)
    log.info("%d migrations applied%s", len(ran), "" if apply else " (apply is off: nothing was run)")
    return {"version_before": before.version, "pending_before": [migration.name for migration in before.pending],
            "applied": ran}
