"""The bodies of the DAG tasks: the plain logic wired to Airflow's hooks, connections and Variables.

DAG files stay thin and call these with their connection ids and the run's dates. Everything here runs
inside a task, never while a DAG file is parsed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import datetime, timedelta
from typing import Any

from include.birthdays.delivery import DeliverySummary, Post, Reply, RetryableDeliveryError, deliver_batch
from include.birthdays.planning import ReleaseBatch, hourly_window, plan_window
from include.birthdays.settings import Settings
from include.birthdays.sweep import sweep_late_window

log = logging.getLogger(__name__)


def read_settings() -> Settings:
    from airflow.sdk import Variable

    return Settings.from_variables(lambda name: Variable.get(name, default=None))


def open_database(conn_id: str) -> Any:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id).get_conn()


def plan_hourly(db_conn_id: str, anchor: datetime) -> list[dict[str, Any]]:
    """Plan the window of the hourly run anchored at ``anchor``; return its releases for the mapped group.

    Each release names its batch and the moment its sensor lets go: ``birthday_release_lead_seconds``
    before the instant, so the send task is up and waiting in-process when the instant comes.
    """
    settings = read_settings()
    window = hourly_window(anchor)
    with closing(open_database(db_conn_id)) as conn:
        result = plan_window(conn, window, settings)
    log.info(
        "Planned window [%s, %s): %d rows upserted, %d release batches, %d rows to release",
        window.start.isoformat(), window.end.isoformat(), result.upserted, len(result.batches),
        sum(batch.size for batch in result.batches),
    )
    lead = timedelta(seconds=settings.release_lead_seconds)
    return [
        {"release_at": (batch.send_at - lead).isoformat(), "batch": batch.to_json()}
        for batch in result.batches
        if batch.send_at is not None
    ]


def sweep(db_conn_id: str, now: datetime) -> list[dict[str, Any]]:
    """Re-plan and expire the late window ending at ``now``; return the batches of rows due now."""
    settings = read_settings()
    with closing(open_database(db_conn_id)) as conn:
        result = sweep_late_window(conn, now, settings)
    log.info(
        "Swept [%s, %s): %d rows upserted, %d expired, %d batches with %d due rows",
        result.window.start.isoformat(), result.window.end.isoformat(), result.upserted, result.expired,
        len(result.batches), sum(batch.size for batch in result.batches),
    )
    return [batch.to_json() for batch in result.batches]


def send_batch(batch_json: dict[str, Any], db_conn_id: str, webhook_conn_id: str, *, from_sweep: bool) -> dict:
    """Deliver one batch; after recording, raise if any row failed.

    A retryable failure raises an error Airflow retries; a permanent one (a 4xx answer) fails the task
    without retries, so the run shows red in the UI while the batch's other rows stay delivered.

    The sweep leaves scheduled rows a grace after their instant, for the hourly release to send them.
    """
    from airflow.providers.http.hooks.http import HttpAsyncHook

    settings = read_settings()
    batch = ReleaseBatch.from_json(batch_json)
    grace = timedelta(seconds=settings.sweep_grace_seconds if from_sweep else 0)
    connection = HttpAsyncHook.get_connection(webhook_conn_id)
    secret = connection.password or None
    endpoint = f"{connection.host}:{connection.port}" if connection.port else str(connection.host)
    with closing(open_database(db_conn_id)) as conn:
        summary = deliver_batch(
            conn, batch, lambda: _webhook_client(webhook_conn_id, settings), settings, secret, grace,
            endpoint=endpoint, reconnect=lambda: open_database(db_conn_id),
        )
    _log_summary(batch, summary)
    if summary.retryable_failures:
        raise RetryableDeliveryError(
            f"{len(summary.retryable_failures)} of {summary.claimed} notifications failed and will be retried: "
            f"ids {[notification_id for notification_id, _ in summary.retryable_failures]}"
        )
    if summary.permanent_failures:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"{len(summary.permanent_failures)} of {summary.claimed} notifications were refused by the webhook "
            f"and will not be retried: ids {[notification_id for notification_id, _ in summary.permanent_failures]}"
        )
    return {"claimed": summary.claimed, "sent": summary.sent, "failed": summary.failed, "skipped": summary.skipped}


def _log_summary(batch: ReleaseBatch, summary: DeliverySummary) -> None:
    for notification_id, error in summary.retryable_failures:
        log.warning("Notification %d failed, retryable: %s", notification_id, error)
    for notification_id, error in summary.permanent_failures:
        log.error("Notification %d failed permanently: %s", notification_id, error)
    log.info(
        "Batch ids %d-%d at %s: claimed %d, sent %d, failed %d, skipped %d",
        batch.first_id, batch.last_id, batch.send_at.isoformat() if batch.send_at else "any due instant",
        summary.claimed, summary.sent, summary.failed, summary.skipped,
    )


# Connection extras the client decides itself (no redirects, our timeout, our own status checks) or that
# aiohttp does not take (the hook drops these too).
_OPTIONS_WE_SET = frozenset({"allow_redirects", "timeout", "check_response", "stream", "cert", "trust_env"})


@asynccontextmanager
async def _webhook_client(conn_id: str, settings: Settings) -> AsyncIterator[Post]:
    """POSTs to the endpoint of connection ``conn_id`` as the HTTP provider's async hook resolves it (URL, the
    connection's extra headers and auth): one session, no redirects, a timeout.

    The hook resolves the connection once; each request then goes straight to the aiohttp session. Sending
    each request through the hook's ``run`` spent more CPU than the request itself (a retrying wrapper per
    call whose retries we never use: retries are this pipeline's own), which capped a send task near half
    of what the endpoint can take (docs/performance.md). The session's connector allows
    ``birthday_max_in_flight`` connections, where aiohttp's default would cap every task at 100.
    """
    import aiohttp
    from airflow.providers.http.hooks.http import HttpAsyncHook

    hook = HttpAsyncHook(method="POST", http_conn_id=conn_id, retry_limit=1)
    config = await hook.config()
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout_seconds)
    options = {name: value for name, value in (config.extra_options or {}).items() if name not in _OPTIONS_WE_SET}
    connector = aiohttp.TCPConnector(limit=settings.max_in_flight)
    async with aiohttp.ClientSession(
        connector=connector, headers=config.headers, auth=config.auth, timeout=timeout
    ) as session:

        async def post(body: bytes, headers: dict[str, str]) -> Reply:
            async with session.post(config.base_url, data=body, headers=headers, allow_redirects=False,
                                    **options) as response:
                await response.read()
            return Reply(response.status, response.headers.get("Retry-After"))

        yield post
