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

from birthday_pipeline.deliver.claims import TaskRef
from birthday_pipeline.deliver.delivery import DeliverySummary, RetryableDeliveryError, Sender, deliver_batch, listed
from birthday_pipeline.deliver.fanout import Post, Reply
from birthday_pipeline.deliver.redaction import describe_failure, endpoint_of
from birthday_pipeline.deliver.webhooks import InvalidSecretError, failure_reason, is_success, signing_key
from birthday_pipeline.operate import alerts, metrics
from birthday_pipeline.plan.planning import ReleaseBatch, Upserted, Window, hourly_window, plan_window
from birthday_pipeline.plan.sweep import late_window, sweep_late_window
from birthday_pipeline.rules.occasions import OCCASIONS, date_columns, occasion_named
from birthday_pipeline.settings import Settings

log = logging.getLogger(__name__)

# How long an alert's POST may take; the summarize task retries a failed alert.
ALERT_TIMEOUT_SECONDS = 15


def read_settings() -> Settings:
    """The pipeline's settings with one Variable lookup (``birthday_settings``; see ``Settings.read``)."""
    from airflow.sdk import Variable

    return Settings.read(lambda name: Variable.get(name, default=None))


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


def check_schema(db_conn_id: str) -> dict[str, str]:
    """The first task of every DAG: fail at once, saying what to run, unless the database is at the version this
    code needs and the users relation has the columns the pipeline reads (one cheap query)."""
    from airflow.sdk.exceptions import AirflowFailException

    from birthday_pipeline.schema.migrations import needed_version, schema_problems

    relation = read_settings().users_relation
    with closing(open_database(db_conn_id)) as conn:
        problems = schema_problems(conn, relation, date_columns())
    if problems:
        raise AirflowFailException("; ".join(problems))
    log.info("%s is at %s; the users relation %s has every column the pipeline reads", db_conn_id,
             needed_version(), relation)
    return {"version": needed_version(), "users_relation": str(relation)}


def migrate(conn_id: str, *, apply: bool) -> dict[str, Any]:
    """List the migrations of the database of ``conn_id`` and, with ``apply``, run the pending ones.

    A migration whose file changed after it was applied fails the task without retries: only a code change
    mends that. Anything else (a lock that could not be had in time, a lost connection) is retried.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from birthday_pipeline.schema.migrations import ChangedMigrationError, describe, migrate_connection

    try:
        before, ran = migrate_connection(conn_id, apply=apply)
    except ChangedMigrationError as error:
        raise AirflowFailException(str(error)) from error
    for line in describe(before):
        log.info("%s", line)
    log.info("%d migrations applied%s", len(ran), "" if apply else " (apply is off: nothing was run)")
    return {"version_before": before.version, "pending_before": [migration.name for migration in before.pending],
            "applied": ran}


def plan_hourly(db_conn_id: str, anchor: datetime) -> list[dict[str, Any]]:
    """Plan the window of the hourly run anchored at ``anchor``; return its releases for the mapped group.

    Each release names its batch and the moment its sensor lets go: ``birthday_release_lead_seconds``
    before the instant, so the send task is up and waiting in-process when the instant comes.
    """
    settings = read_settings()
    window = hourly_window(anchor)
    with closing(open_database(db_conn_id)) as conn:
        result = plan_window(conn, window, settings)
    metrics.count_planned(result.upserted.by_occasion)
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
    metrics.count_planned(result.upserted.by_occasion)
    metrics.count_expired(result.expired_by_occasion)
    log.info(
        "Swept [%s, %s): %d rows upserted, %d expired, %d cancelled (user no longer exists), %d batches with %d due"
        " rows", result.window.start.isoformat(), result.window.end.isoformat(), result.upserted.count,
        result.expired, result.orphans_cancelled, len(result.batches), sum(batch.size for batch in result.batches),
    )
    _log_replanned(result.upserted)
    return [batch.to_json() for batch in result.batches]


def _log_replanned(upserted: Upserted) -> None:
    if upserted.without_id:
        log.warning("Skipped %d rows of the users relation that have no id (NULL): no notification can name them; "
                    "give every user an id (docs/deploy.md)", upserted.without_id)
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
    metrics.record_delivery(summary)
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
                  settings=settings, secret=secret, endpoint=endpoint, conn_id=webhook_conn_id, task=current_task())


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


def summarize_hourly(db_conn_id: str, anchor: datetime, alerts_conn_id: str | None = None) -> dict[str, dict[str, int]]:
    """Log one summary line per occasion for the window of the hourly run anchored at ``anchor``; then send the
    run's alerts to ``alerts_conn_id`` (if that connection exists): new problems, or the recovery."""
    settings = read_settings()
    return _summarize("hourly", db_conn_id, hourly_window(anchor), settings, alerts_conn_id)


def summarize_sweep(db_conn_id: str, now: datetime, alerts_conn_id: str | None = None) -> dict[str, dict[str, int]]:
    """Log one summary line per occasion for the late window the sweep at ``now`` covered; then send the run's
    alerts to ``alerts_conn_id`` (if that connection exists): new problems or the recovery, and hourly windows
    whose sends are late or caught up, as of ``now``."""
    settings = read_settings()
    return _summarize("sweep", db_conn_id, late_window(now, settings), settings, alerts_conn_id, late_check_at=now)


def _summarize(what: str, db_conn_id: str, window: Window, settings: Settings, alerts_conn_id: str | None,
               late_check_at: datetime | None = None) -> dict[str, dict[str, int]]:
    from birthday_pipeline.operate.report import summary_lines, window_counts

    send = _alert_sender(alerts_conn_id)
    with closing(open_database(db_conn_id)) as conn:
        counts = window_counts(conn, window)
        for line in summary_lines(what, window, counts):
            log.info("%s", line)
        if send is not None:
            run, tasks_succeeded = _this_run()
            alerts.report_run(conn, run, tasks_succeeded=tasks_succeeded, settings=settings, send=send,
                              late_check_at=late_check_at)
    return counts


def _this_run() -> tuple[alerts.Run, bool]:
    """The running task's DAG run, and whether every other task of it succeeded (or was skipped)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.configuration import conf

    ti = get_current_context()["ti"]
    failed = ti.get_ti_count(dag_id=ti.dag_id, run_ids=[ti.run_id], states=["failed", "upstream_failed"])
    return alerts.Run(ti.dag_id, ti.run_id, conf.get("api", "base_url", fallback="http://localhost:8080/")), not failed


def _alert_sender(conn_id: str | None) -> alerts.Send | None:
    """How to send an alert through connection ``conn_id``: a JSON POST (http) or an email (smtp); None when the
    connection does not exist, which turns alerts off."""
    if conn_id is None:
        return None
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(conn_id)
    except AirflowNotFoundException:
        log.info("No connection %s: no alerts are sent", conn_id)
        return None
    if connection.conn_type in ("http", "https"):
        return lambda alert: _post_alert(conn_id, alert)
    if connection.conn_type in ("smtp", "email"):
        recipients = connection.extra_dejson.get("to")
        if not recipients:
            raise ValueError(f"Connection {conn_id} is an smtp connection without recipients: set its extra "
                             '{"to": "ops@example.com"} (a list or a comma-separated string)')
        return lambda alert: _email_alert(conn_id, recipients, alert)
    raise ValueError(f"Connection {conn_id} has type {connection.conn_type!r}; alerts go to an http connection "
                     "(a JSON POST) or an smtp connection (an email)")


class AlertNotSent(RuntimeError):
    """The alert endpoint gave no 2xx answer; the message names it by its connection id, never its URL."""


def _post_alert(conn_id: str, alert: alerts.Alert) -> None:
    """POST ``alert`` to the endpoint of connection ``conn_id``; raise ``AlertNotSent`` unless it answers 2xx.

    The session is the HTTP provider's for the connection (its headers, auth, proxies, TLS settings); the
    request is ours, not the hook's ``run``, which logs the URL (or an error quoting it) and the whole reply
    body on a failure. The body is never read (``stream``, then closed) and no redirect is followed.
    """
    import requests
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=conn_id)
    try:
        with hook.get_conn() as session, session.post(
            hook.url_from_endpoint(None), json=alert.payload(), timeout=ALERT_TIMEOUT_SECONDS, allow_redirects=False,
            stream=True,
        ) as response:
            status = response.status_code
    except requests.RequestException as error:
        # from None: the cause's text, in the task log's traceback, would quote the URL.
        raise AlertNotSent(f"Alert {alert.event} not sent: {describe_failure(error, conn_id)}") from None
    if not is_success(status):
        raise AlertNotSent(f"Alert {alert.event} not sent: {endpoint_of(conn_id)} answered {failure_reason(status)}")


def _email_alert(conn_id: str, recipients: str | list[str], alert: alerts.Alert) -> None:
    import html

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=conn_id) as hook:
        hook.send_email_smtp(to=recipients, subject=alert.subject,
                             html_content=f"<pre>{html.escape(alert.text)}</pre>")
def retention(db_conn_id: str, now: datetime) -> dict[str, int]:
    """Delete the history past its keep period as of ``now`` (the run's date); log and return the counts."""
    from birthday_pipeline.operate.retention import delete_old_history

    settings = read_settings()
    with closing(open_database(db_conn_id)) as conn:
        result = delete_old_history(conn, now, settings)
    bounds = result.bounds
    log.info(
        "Retention as of %s: deleted %d attempt rows started before %s and %d notifications celebrated before %s "
        "(none scheduled, sending or failed, none due after %s) in %d batches",
        now.isoformat(), result.attempts_deleted, bounds.attempts_before.isoformat(), result.notifications_deleted,
        bounds.notifications_before.isoformat(), bounds.late_from.isoformat(), result.batches,
    )
    return {"attempts_deleted": result.attempts_deleted, "notifications_deleted": result.notifications_deleted,
            "batches": result.batches}


def resend(params: dict[str, Any], requested_at: datetime, db_conn_id: str, webhook_conn_id: str) -> dict[str, int]:
    """Run the resend the trigger form asked for; log each decision and one summary line per occasion.

    Fails like a send task when a re-sent notification fails, after recording it.
    """
    from birthday_pipeline.operate.resend import ResendRequest
    from birthday_pipeline.operate.resend import resend as resend_notifications

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
        result = resend_notifications(conn, request, settings, sender, requested_at)
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
        metrics.record_delivery(delivery)
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


# The most bytes of a reply body the webhook client reads: the status decides the outcome, the body is read only
# so that a short one leaves its connection free for the next request.
REPLY_BYTES_READ = 4096

# Connection extras the client decides itself (no redirects, our timeout, our own status checks) or that
# aiohttp does not take (the hook drops these too).
_OPTIONS_WE_SET = frozenset({"allow_redirects", "timeout", "check_response", "stream", "cert", "trust_env"})


@asynccontextmanager
async def _webhook_client(conn_id: str, settings: Settings) -> AsyncIterator[Post]:
    """POSTs to the endpoint of connection ``conn_id`` as the HTTP provider's async hook resolves it (URL, the
    connection's extra headers and auth): one session, no redirects, a timeout for the whole request, and at
    most ``REPLY_BYTES_READ`` of each reply's body read, never decompressed.

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
    connector = aiohttp.TCPConnector(limit=settings.max_in_flight, socket_factory=_small_receive_buffer_socket)
    # A reply's body is never decompressed and read only up to REPLY_BYTES_READ, so a huge body or a gzip bomb
    # costs each request a few kilobytes; the small read buffer pauses a fast sender before it fills more.
    async with aiohttp.ClientSession(
        connector=connector, headers=config.headers, auth=config.auth, timeout=timeout, auto_decompress=False,
        read_bufsize=REPLY_BYTES_READ,
    ) as session:

        async def post(body: bytes, headers: dict[str, str]) -> Reply:
            async with session.post(config.base_url, data=body, headers=headers, allow_redirects=False,
                                    **options) as response:
                await _read_at_most(response.content, REPLY_BYTES_READ)
                if not response.content.at_eof():
                    response.close()  # the rest of the body is never read: the connection cannot serve another
            return Reply(response.status, response.headers.get("Retry-After"))

        yield post


def _small_receive_buffer_socket(address: Any) -> Any:
    """A socket whose kernel receive buffer holds REPLY_BYTES_READ bytes (Linux doubles it), so one read of it
    hands aiohttp no more than that, where the default buffer let each connection take in 200 KB at once."""
    import socket

    family, kind, protocol, _, _ = address
    sock = socket.socket(family=family, type=kind, proto=protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, REPLY_BYTES_READ)
    return sock


async def _read_at_most(content: Any, limit: int) -> None:
    """Read and drop up to ``limit`` bytes of a reply body (all of a short one, so its connection is reused)."""
    while limit > 0 and (chunk := await content.read(limit)):
        limit -= len(chunk)
