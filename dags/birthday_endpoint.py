"""
### Birthday endpoint (manual only)

Enables a webhook endpoint again. An endpoint that answered `410 Gone` is disabled: no send task posts to it,
and its due notifications wait (`scheduled`, or retryably `failed`, never failed for good) until it is enabled
again or they expire at the late window (`max_lateness_hours`); an alert said so, with the count waiting.
Trigger this DAG once the endpoint is back (or `airflow dags trigger birthday_endpoint --conf
'{"conn_id": "birthday_webhook"}'`): it is enabled, its circuit breaker closed, and the next run of
`birthday_sweep` sends every waiting notification, once each, under its own webhook-id.

- **conn_id** (default `birthday_webhook`): the HTTP connection whose endpoint to enable. The endpoint is the
  connection's URL, named in the database only by its SHA-256; a connection pointed at a new URL is a new
  endpoint, enabled from the start.

The task log says what the endpoint was (disabled since when and why, or its breaker open) and how many
notifications are due now. Task `check_schema` runs first and fails at once, saying what to run, when
`birthday_db` lacks a migration this code needs. docs/operations.md describes the endpoint states.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from birthday_pipeline.ids import DB_CONN, ENDPOINT_DAG, WEBHOOK_CONN


@dag(
    dag_id=ENDPOINT_DAG,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "birthday-pipeline", "retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["birthdays", "operations"],
    doc_md=__doc__,
    params={
        "conn_id": Param(WEBHOOK_CONN, type="string", minLength=1, title="Connection",
                         description="The webhook connection whose endpoint to enable again."),
    },
)
def birthday_endpoint() -> None:
    @task(multiple_outputs=False)
    def check_schema(db_conn_id: str = DB_CONN) -> dict:
        from birthday_pipeline.edge import schema_check

        return schema_check.check_schema(db_conn_id)

    @task(multiple_outputs=False)
    def enable(db_conn_id: str = DB_CONN) -> dict:
        from birthday_pipeline.edge import endpoint

        context = get_current_context()
        return endpoint.enable(db_conn_id, context["params"]["conn_id"], context["dag_run"].run_after)

    check_schema() >> enable()


birthday_endpoint()
