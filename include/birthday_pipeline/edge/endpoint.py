"""The task body of the ``birthday_endpoint`` DAG: enable a webhook endpoint again."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

from birthday_pipeline.deliver.claims import due_parameters
from birthday_pipeline.deliver.endpoints import enable as enable_endpoint
from birthday_pipeline.deliver.pacing import endpoint_key
from birthday_pipeline.edge.connections import open_database
from birthday_pipeline.edge.sending import endpoint_of
from birthday_pipeline.edge.variables import read_settings

log = logging.getLogger(__name__)


def enable(db_conn_id: str, webhook_conn_id: str, now: datetime) -> dict[str, Any]:
    """Enable the endpoint of connection ``webhook_conn_id`` again and close its circuit breaker; log what it was
    and how many notifications wait for the next sweep (as of ``now``)."""
    from airflow.providers.http.hooks.http import HttpAsyncHook

    settings = read_settings()
    key = endpoint_key(endpoint_of(HttpAsyncHook.get_connection(webhook_conn_id)))
    with closing(open_database(db_conn_id)) as conn:
        enabled = enable_endpoint(conn, key, due_parameters(settings, now, timedelta(0)))
    if not enabled.known:
        log.info("The endpoint of connection %s was never disabled and its circuit breaker never opened: "
                 "nothing to do", webhook_conn_id)
    elif enabled.disabled_at is not None:
        log.info("Enabled the endpoint of connection %s again (disabled since %s: %s)", webhook_conn_id,
                 enabled.disabled_at.isoformat(), enabled.disabled_reason)
    elif enabled.breaker_opened_at is not None:
        log.info("Closed the circuit breaker of the endpoint of connection %s (open since %s)", webhook_conn_id,
                 enabled.breaker_opened_at.isoformat())
    else:
        log.info("The endpoint of connection %s was enabled already", webhook_conn_id)
    log.info("%d notifications are due now and go out with the next run of the sweep", enabled.waiting)
    return {"was_disabled": enabled.disabled_at is not None, "breaker_was_open": enabled.breaker_opened_at is not None,
            "waiting": enabled.waiting}
