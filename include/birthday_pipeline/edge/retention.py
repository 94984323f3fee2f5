"""The task body of the ``birthday_retention`` DAG: delete the history past its keep period."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime

from birthday_pipeline.edge.connections import open_database
from birthday_pipeline.edge.variables import read_settings

log = logging.getLogger(__name__)


def delete_old_history(db_conn_id: str, now: datetime) -> dict[str, int]:
    """Delete the history past its keep period as of ``now`` (the run's date); log and return the counts."""
    from birthday_pipeline.operate import retention

    settings = read_settings()
    with closing(open_database(db_conn_id)) as conn:
        result = retention.delete_old_history(conn, now, settings)
    bounds = result.bounds
    log.info(
        "Retention as of %s: deleted %d attempt rows started before %s and %d notifications celebrated before %s "
        "(none scheduled, sending or failed, none due after %s) in %d batches",
        now.isoformat(), result.attempts_deleted, bounds.attempts_before.isoformat(), result.notifications_deleted,
        bounds.notifications_before.isoformat(), bounds.late_from.isoformat(), result.batches,
    )
    return {"attempts_deleted": result.attempts_deleted, "notifications_deleted": result.notifications_deleted,
            "batches": result.batches}
