"""What the hourly and sweep runs log and report: re-planned rows, the window's summary and the run's alerts."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING

from birthday_pipeline.deliver.delivery import listed
from birthday_pipeline.edge.airflow_versions import airflow_conf
from birthday_pipeline.edge.alert_channels import alert_sender
from birthday_pipeline.edge.connections import open_database
from birthday_pipeline.operate import alerts
from birthday_pipeline.plan.planning import Upserted, Window
from birthday_pipeline.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

log = logging.getLogger(__name__)


def log_replanned(upserted: Upserted) -> None:
    if upserted.without_id:
        log.warning("Skipped %d rows of the users relation that have no id (NULL): no notification can name them; "
                    "give every user an id (docs/deploy.md)", upserted.without_id)
    if upserted.replanned_ids:
        log.info("Re-planned %d notifications not yet sent to a new date, instant or status (a rule or the user "
                 "changed since they were planned): ids %s", len(upserted.replanned_ids),
                 listed(upserted.replanned_ids))


def summarize(what: str, db_conn_id: str, window: Window, settings: Settings, ti: RuntimeTaskInstanceProtocol,
              alerts_conn_id: str | None, late_check_at: datetime | None = None) -> dict[str, dict[str, int]]:
    """Log one summary line per occasion for ``window``; then send the run's alerts through ``alerts_conn_id``."""
    from birthday_pipeline.operate.report import summary_lines, window_counts

    send = alert_sender(alerts_conn_id)
    with closing(open_database(db_conn_id)) as conn:
        counts = window_counts(conn, window, settings)
        for line in summary_lines(what, window, counts):
            log.info("%s", line)
        if send is not None:
            run, tasks_succeeded = this_run(ti)
            alerts.report_run(conn, run, tasks_succeeded=tasks_succeeded, settings=settings, send=send,
                              late_check_at=late_check_at)
    return counts


def this_run(ti: RuntimeTaskInstanceProtocol) -> tuple[alerts.Run, bool]:
    """The DAG run of the running task ``ti``, and whether every other task of it succeeded (or was skipped)."""
    failed = ti.get_ti_count(dag_id=ti.dag_id, run_ids=[ti.run_id], states=["failed", "upstream_failed"])
    return alerts.Run(ti.dag_id, ti.run_id,
                      airflow_conf().get("api", "base_url", fallback="http://localhost:8080/")), not failed
