"""The task bodies of the hourly ``birthday_notifications`` DAG: plan the next hour's window, summarize it (its
``send_batch`` is ``birthday_pipeline.edge.sending``)."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from birthday_pipeline.edge.connections import open_database
from birthday_pipeline.edge.reporting import log_replanned
from birthday_pipeline.edge.reporting import summarize as summarize_window
from birthday_pipeline.edge.variables import max_mapped_tasks, read_settings
from birthday_pipeline.operate import metrics
from birthday_pipeline.plan.planning import ReleaseBatch, hourly_window, plan_window
from birthday_pipeline.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

log = logging.getLogger(__name__)


def plan(db_conn_id: str, anchor: datetime) -> list[dict[str, Any]]:
    """Plan the window of the hourly run anchored at ``anchor``; return its releases for the mapped group.

    Each release names its batch and the moment its sensor lets go: ``release_lead_seconds``
    before the instant, so the send task is up and waiting in-process when the instant comes.
    """
    settings = read_settings()
    window = hourly_window(anchor)
    with closing(open_database(db_conn_id)) as conn:
        result = plan_window(conn, window, settings, max_mapped_tasks())
    metrics.count_planned(result.upserted.by_occasion)
    log.info(
        "Planned window [%s, %s): %d rows upserted, %d release batches, %d rows to release",
        window.start.isoformat(), window.end.isoformat(), result.upserted.count, len(result.batches),
        sum(batch.size for batch in result.batches),
    )
    log_replanned(result.upserted)
    return releases(result.batches, settings)


def releases(batches: list[ReleaseBatch], settings: Settings) -> list[dict[str, Any]]:
    """The mapped group's arguments (the plan task's XCom): each batch, and the moment its sensor lets go."""
    lead = timedelta(seconds=settings.release_lead_seconds)
    return [
        {"release_at": (batch.send_at - lead).isoformat(), "batch": batch.to_json()}
        for batch in batches
        if batch.send_at is not None
    ]


def summarize(db_conn_id: str, anchor: datetime, ti: RuntimeTaskInstanceProtocol,
              alerts_conn_id: str | None = None) -> dict[str, dict[str, int]]:
    """Log one summary line per occasion for the window of the hourly run anchored at ``anchor``; then send the
    run's alerts to ``alerts_conn_id`` (if that connection exists): new problems, or the recovery."""
    settings = read_settings()
    return summarize_window("hourly", db_conn_id, hourly_window(anchor), settings, ti, alerts_conn_id)
