"""Sending, as the hourly release, the sweep and the resend do it: the task's sender, the body of ``send_batch``
and how a delivery's outcome ends the task."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from birthday_pipeline.deliver.claims import TaskRef
from birthday_pipeline.deliver.delivery import DeliverySummary, RetryableDeliveryError, Sender, deliver_batch
from birthday_pipeline.deliver.webhooks import InvalidSecretError, signing_key
from birthday_pipeline.edge.airflow_versions import task_exception
from birthday_pipeline.edge.connections import database_connector
from birthday_pipeline.edge.variables import read_settings
from birthday_pipeline.edge.webhook_client import webhook_client
from birthday_pipeline.ids import ENDPOINT_DAG
from birthday_pipeline.operate import metrics
from birthday_pipeline.plan.planning import ReleaseBatch
from birthday_pipeline.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

log = logging.getLogger(__name__)


def task_ref(ti: RuntimeTaskInstanceProtocol | None) -> TaskRef | None:
    """The running task instance ``ti``, recorded with each HTTP attempt; None outside a task."""
    if ti is None:
        return None
    return TaskRef(ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1,
                   ti.try_number)


def send_batch(batch_json: dict[str, Any], db_conn_id: str, webhook_conn_id: str, *, from_sweep: bool,
               ti: RuntimeTaskInstanceProtocol | None = None) -> dict:
    """Deliver one batch; after recording, raise if any row failed.

    A retryable failure raises an error Airflow retries; a permanent one (a 4xx answer) fails the task
    without retries, so the run shows red in the UI while the batch's other rows stay delivered.

    The sweep leaves scheduled rows a grace after their instant, for the hourly release to send them.
    """
    settings = read_settings()
    batch = ReleaseBatch.from_json(batch_json)
    grace = timedelta(seconds=settings.sweep_grace_seconds if from_sweep else 0)
    connect = database_connector(db_conn_id)
    send_with = sender(connect, webhook_conn_id, settings, ti)
    with closing(connect()) as conn:  # the first connection, in the task's thread: the hook looks up birthday_db
        summary = deliver_batch(conn, batch, send_with, grace)
    log_summary(batch, summary)
    metrics.record_delivery(summary)
    raise_on_failures(summary, webhook_conn_id)
    return {"claimed": summary.claimed, "sent": summary.sent, "failed": summary.failed, "skipped": summary.skipped,
            "waiting": summary.waiting}


def sender(connect: Callable[[], Any], webhook_conn_id: str, settings: Settings,
           ti: RuntimeTaskInstanceProtocol | None) -> Sender:
    """What this task sends with; fails it, before anything is claimed, if the signing secret is unusable."""
    from airflow.providers.http.hooks.http import HttpAsyncHook
    connection = HttpAsyncHook.get_connection(webhook_conn_id)
    secret = connection.password or None
    if secret is not None:
        try:
            signing_key(secret)
        except InvalidSecretError as error:
            raise task_exception("AirflowFailException")(
                f"Connection {webhook_conn_id!r}: its password is not a usable webhook signing secret: {error}. "
                "Set it to 'whsec_' followed by the base64 key (Standard Webhooks), or leave it empty to send "
                "unsigned."
            ) from None
    return Sender(connect=connect, open_client=lambda: webhook_client(webhook_conn_id, settings),
                  settings=settings, secret=secret, endpoint=endpoint_of(connection), conn_id=webhook_conn_id,
                  task=task_ref(ti))


def endpoint_of(connection: Any) -> str:
    """The endpoint an HTTP connection posts to, as ``send_pacing`` and ``webhook_endpoints`` hash it."""
    return f"{connection.host}:{connection.port}" if connection.port else str(connection.host)


def raise_on_failures(summary: DeliverySummary, conn_id: str) -> None:
    """Fail the task for what went wrong, after recording: the endpoint gone (no retries: only enabling it again
    helps), retryable failures (Airflow retries), or rows refused for good."""
    if summary.gone:
        raise task_exception("AirflowFailException")(
            f"The endpoint of connection {conn_id!r} answered 410 Gone: it is disabled, and nothing is sent to it "
            f"until it is enabled again (DAG {ENDPOINT_DAG}, or point the connection at a new URL); "
            f"{summary.waiting} notifications of this batch wait for it, none failed"
        )
    if summary.retryable_failures:
        raise RetryableDeliveryError(
            f"{len(summary.retryable_failures)} of {summary.claimed} notifications failed and will be retried: "
            f"ids {[notification_id for notification_id, _ in summary.retryable_failures]}"
        )
    if summary.permanent_failures:
        raise task_exception("AirflowFailException")(
            f"{len(summary.permanent_failures)} of {summary.claimed} notifications were refused by the webhook "
            f"and will not be retried: ids {[notification_id for notification_id, _ in summary.permanent_failures]}"
        )


def log_summary(batch: ReleaseBatch, summary: DeliverySummary) -> None:
    for notification_id, error in summary.retryable_failures:
        log.warning("Notification %d failed, retryable: %s", notification_id, error)
    for notification_id, error in summary.permanent_failures:
        log.error("Notification %d failed permanently: %s", notification_id, error)
    log.info(
        "Batch ids %d-%d at %s: claimed %d, sent %d, failed %d, skipped %d, waiting for the endpoint %d",
        batch.first_id, batch.last_id, batch.send_at.isoformat() if batch.send_at else "any due instant",
        summary.claimed, summary.sent, summary.failed, summary.skipped, summary.waiting,
    )
