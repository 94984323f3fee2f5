"""Where the run's alerts go: a JSON POST to an http connection or an email through an smtp connection."""

from __future__ import annotations

import logging

from birthday_pipeline.deliver.redaction import describe_failure, endpoint_of
from birthday_pipeline.deliver.webhooks import failure_reason, is_success
from birthday_pipeline.edge.airflow_versions import task_exception
from birthday_pipeline.operate import alerts

log = logging.getLogger(__name__)

# How long an alert's POST may take; the summarize task retries a failed alert.
ALERT_TIMEOUT_SECONDS = 15


def alert_sender(conn_id: str | None) -> alerts.Send | None:
    """How to send an alert through connection ``conn_id``: a JSON POST (http) or an email (smtp); None when the
    connection does not exist, which turns alerts off."""
    if conn_id is None:
        return None
    from airflow.sdk import Connection
    try:
        connection = Connection.get(conn_id)
    except task_exception("AirflowNotFoundException"):
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
