"""The bodies of the DAG tasks: the plain logic wired to Airflow's hooks, connections and Variables.

DAG files stay thin and call these with their connection ids and the run's dates. Everything here runs
inside a task, never while a DAG file is parsed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from datetime import date, datetime, timedelta
from typing import Any

from birthday_pipeline.claims import TaskRef
from birthday_pipeline.delivery import DeliverySummary, RetryableDeliveryError, Sender, deliver_batch, listed
from birthday_pipeline.fanout import Post, Reply
from birthday_pipeline.occasions import OCCASIONS, occasion_named
from birthday_pipeline.planning import ReleaseBatch, Upserted, Window, hourly_window, plan_window
from birthday_pipeline.settings import Settings
from birthday_pipeline.sweep import late_window, sweep_late_window
from birthday_pipeline.webhooks import InvalidSecretError, signing_key

log = logging.getLogger(__name__)


def read_settings() -> Settings:
    from airflow.sdk import Variable

    return Settings.from_variables(lambda name: Variable.get(name, default=None))


def current_task() -> TaskRef | None:
    """The running task instance, recorded with each HTTP attempt; None outside a task."""
    from airflow.sdk import get_current_context

    try:
        ti = get_current_context()["ti"]
    except (RuntimeError, KeyError):
        return None
    return TaskRef(ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1,
                   ti.try_number)


def open_database(conn_id: str) -> Any:
    return database_connector(conn_id)()


def database_connector(conn_id: str) -> Callable[[], Any]:
    """Opens a new connection to ``conn_id`` on each call, from any thread.

    One hook for all of them: it looks the Airflow connection up once, on the first call (made in the task's
    own thread), and then only opens connections with what it found.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id).get_conn


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
        window.start.isoformat(), window.end.isoformat(), result.upserted.count, len(result.batches),
        sum(batch.size for batch in result.batches),
    )
    _log_replanned(result.upserted)
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
        result.window.start.isoformat(), result.window.end.isoformat(), result.upserted.count, result.expired,
        len(result.batches), sum(batch.size for batch in result.batches),
    )
    _log_replanned(result.upserted)
    return [batch.to_json() for batch in result.batches]


def _log_replanned(upserted: Upserted) -> None:
    if upserted.replanned_ids:
        log.info("Re-planned %d notifications not yet sent to a new date, instant or status (a rule or the user "
                 "changed since they were planned): ids %s", len(upserted.replanned_ids),
                 listed(upserted.replanned_ids))


def send_batch(batch_json: dict[str, Any], db_conn_id: str, webhook_conn_id: str, *, from_sweep: bool) -> dict:
    """Deliver one batch; after recording, raise if any row failed.

    A retryable failure raises an error Airflow retries; a permanent one (a 4xx answer) fails the task
    without retries, so the run shows red in the UI while the batch's other rows stay delivered.

    The sweep leaves scheduled rows a grace after their instant, for the hourly release to send them.
    """
    settings = read_settings()
    batch = ReleaseBatch.from_json(batch_json)
    grace = timedelta(seconds=settings.sweep_grace_seconds if from_sweep else 0)
    connect = database_connector(db_conn_id)
    sender = _sender(connect, webhook_conn_id, settings)
    with closing(connect()) as conn:  # the first connection, in the task's thread: the hook looks up birthday_db
        summary = deliver_batch(conn, batch, sender, grace)
    _log_summary(batch, summary)
    _raise_on_failures(summary)
    return {"claimed": summary.claimed, "sent": summary.sent, "failed": summary.failed, "skipped": summary.skipped}


def _sender(connect: Callable[[], Any], webhook_conn_id: str, settings: Settings) -> Sender:
    """What this task sends with; fails it, before anything is claimed, if the signing secret is unusable."""
    from airflow.providers.http.hooks.http import HttpAsyncHook
    from airflow.sdk.exceptions import AirflowFailException

    connection = HttpAsyncHook.get_connection(webhook_conn_id)
    secret = connection.password or None
    if secret is not None:
        try:
            signing_key(secret)
        except InvalidSecretError as error:
            raise AirflowFailException(
                f"Connection {webhook_conn_id!r}: its password is not a usable webhook signing secret: {error}. "
                "Set it to 'whsec_' followed by the base64 key (Standard Webhooks), or leave it empty to send "
                "unsigned."
            ) from None
    endpoint = f"{connection.host}:{connection.port}" if connection.port else str(connection.host)
    return Sender(connect=connect, open_client=lambda: _webhook_client(webhook_conn_id, settings),
                  settings=settings, secret=secret, endpoint=endpoint, task=current_task())


def _raise_on_failures(summary: DeliverySummary) -> None:
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


def summarize_hourly(db_conn_id: str, anchor: datetime) -> dict[str, dict[str, int]]:
    """Log one summary line per occasion for the window of the hourly run anchored at ``anchor``."""
    return _summarize("hourly", db_conn_id, hourly_window(anchor))


def summarize_sweep(db_conn_id: str, now: datetime) -> dict[str, dict[str, int]]:
    """Log one summary line per occasion for the late window the sweep at ``now`` covered."""
    return _summarize("sweep", db_conn_id, late_window(now, read_settings()))


def _summarize(what: str, db_conn_id: str, window: Window) -> dict[str, dict[str, int]]:
    from birthday_pipeline.report import summary_lines, window_counts

    with closing(open_database(db_conn_id)) as conn:
        counts = window_counts(conn, window)
    for line in summary_lines(what, window, counts):
        log.info("%s", line)
    return counts


def resend(params: dict[str, Any], requested_at: datetime, db_conn_id: str, webhook_conn_id: str) -> dict[str, int]:
    """Run the resend the trigger form asked for; log each decision and one summary line per occasion.

    Fails like a send task when a re-sent notification fails, after recording it.
    """
    from birthday_pipeline.resend import ResendRequest
    from birthday_pipeline.resend import resend as resend_notifications

    settings = read_settings()
    request = ResendRequest(
        user_ids=[int(user_id) for user_id in params["user_ids"]],
        occasion=occasion_named(params["occasion"]),
        occasion_date=date.fromisoformat(str(params["date"])),
        dry_run=bool(params["dry_run"]),
        force=bool(params["force"]),
    )
    connect = database_connector(db_conn_id)
    sender = None if request.dry_run else _sender(connect, webhook_conn_id, settings)
    with closing(connect()) as conn:
        result = resend_notifications(conn, request, sender, requested_at)
    counts = result.counts()
    delivery = result.delivery
    outcome = {**counts, "sent": delivery.sent if delivery else 0, "failed": delivery.failed if delivery else 0}
    for name in OCCASIONS:
        if name != request.occasion.name:
            log.info("Summary resend %s: not requested", name)
            continue
        log.info(
            "Summary resend %s%s: %d requested; %s",
            name, " (dry run, nothing sent)" if request.dry_run else "",
            len(request.user_ids), ", ".join(f"{key} {value}" for key, value in outcome.items()),
        )
    if delivery is not None:
        _raise_on_failures(delivery)
    return outcome


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
