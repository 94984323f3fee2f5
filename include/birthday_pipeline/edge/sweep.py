"""The task bodies of the ``birthday_sweep`` DAG: re-plan and expire the late window, summarize it (its
``send_batch`` is ``birthday_pipeline.edge.sending``)."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Any

from birthday_pipeline.edge.connections import open_database
from birthday_pipeline.edge.reporting import log_replanned
from birthday_pipeline.edge.reporting import summarize as summarize_window
from birthday_pipeline.edge.variables import max_mapped_tasks, read_settings
from birthday_pipeline.operate import metrics
from birthday_pipeline.plan.sweep import late_window, sweep_late_window

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

log = logging.getLogger(__name__)


def find_due(db_conn_id: str, now: datetime) -> list[dict[str, Any]]:
    """Re-plan and expire the late window ending at ``now``; return the batches of rows due now."""
    settings = read_settings()
    with closing(open_database(db_conn_id)) as conn:
        result = sweep_late_window(conn, now, settings, max_mapped_tasks())
    metrics.count_planned(result.upserted.by_occasion)
    metrics.count_expired(result.expired_by_occasion)
    log.info(
        "Swept [%s, %s): %d rows upserted, %d expired, %d cancelled (user no longer exists), %d batches with %d due"
        " rows", result.window.start.isoformat(), result.window.end.isoformat(), result.upserted.count,
        result.expired, result.orphans_cancelled, len(result.batches), sum(batch.size for batch in result.batches),
    )
    log_replanned(result.upserted)
    return [batch.to_json() for batch in result.batches]


def summarize(db_conn_id: str, now: datetime, ti: RuntimeTaskInstanceProtocol,
              alerts_conn_id: str | None = None) -> dict[str, dict[str, int]]:
    """Log one summary line per occasion for the late window the sweep at ``now`` covered; then send the run's
    alerts to ``alerts_conn_id`` (if that connection exists): new problems or the recovery, and hourly windows
    whose sends are late or caught up, as of ``now``."""
    settings = read_settings()
    return summarize_window("sweep", db_conn_id, late_window(now, settings), settings, ti, alerts_conn_id,
                            late_check_at=now)
