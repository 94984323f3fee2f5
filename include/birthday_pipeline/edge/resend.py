"""The task body of the ``birthday_resend`` DAG: the resend the trigger form asked for."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from birthday_pipeline.edge.connections import database_connector
from birthday_pipeline.edge.sending import raise_on_failures, sender
from birthday_pipeline.edge.variables import read_settings
from birthday_pipeline.operate import metrics

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

log = logging.getLogger(__name__)


def resend(params: dict[str, Any], requested_at: datetime, db_conn_id: str, webhook_conn_id: str,
           ti: RuntimeTaskInstanceProtocol | None = None) -> dict[str, int]:
    """Run the resend the trigger form asked for; log each decision and one summary line per occasion.

    Fails like a send task when a re-sent notification fails, after recording it.
    """
    from birthday_pipeline.operate.resend import ResendRequest
    from birthday_pipeline.operate.resend import resend as resend_notifications

    settings = read_settings()
    request = ResendRequest(
        user_ids=[int(user_id) for user_id in params["user_ids"]],
        occasion=settings.occasion_registry.named(params["occasion"]),
        occasion_date=date.fromisoformat(str(params["date"])),
        dry_run=bool(params["dry_run"]),
        force=bool(params["force"]),
    )
    connect = database_connector(db_conn_id)
    send_with = None if request.dry_run else sender(connect, webhook_conn_id, settings, ti)
    with closing(connect()) as conn:
        result = resend_notifications(conn, request, settings, send_with, requested_at)
    counts = result.counts()
    delivery = result.delivery
    outcome = {**counts, "sent": delivery.sent if delivery else 0, "failed": delivery.failed if delivery else 0}
    for name in settings.occasion_registry:
        if name != request.occasion.name:
            log.info("Summary resend %s: not requested", name)
            continue
        log.info(
            "Summary resend %s%s: %d requested; %s",
            name, " (dry run, nothing sent)" if request.dry_run else "",
            len(request.user_ids), ", ".join(f"{key} {value}" for key, value in outcome.items()),
        )
    if delivery is not None:
        metrics.record_delivery(delivery)
        raise_on_failures(delivery, webhook_conn_id)
    return outcome
