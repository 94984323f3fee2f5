"""
### Birthday sweep (every 5 minutes)

The safety net that makes recovery independent of the hourly runs. Each run, as of its own logical time
`T` (never the wall clock):

1. re-plans the late window `[T - max_lateness_hours, T)` with the same planning SQL as
   `birthday_notifications`, so rows that no hourly run created (scheduler down, DAG paused, runs failed)
   appear;
2. marks rows whose instant is older than that window `expired`, with the reason; they are never sent;
3. sends every due row with the same batched send code, mapped over batches (no sensor): `scheduled` rows
   whose instant passed more than `sweep_grace_seconds` (120) ago, so it does not race a healthy
   hourly release; `sending` rows whose claim's lease ran out (its task stopped renewing it for
   `lease_seconds`, 600: a live task's rows are never taken); and retryable `failed` rows below
   `max_attempts` (10, counted over every try of every task).

Task `check_schema` runs first and fails at once, saying what to run, when `birthday_db` lacks a migration
this code needs (trigger `birthday_migrate`) or the users relation lacks a column. Every occasion of the
settings (birthdays, work anniversaries, any the `occasions` setting adds) goes through the same steps. Nothing is
ever sent before its instant. Trigger it by hand (no parameters) to re-drive at once; task `summarize`
ends each run with one line per occasion: the late window's notifications in each status.
With connection `birthday_alerts` it then sends the run's alerts: new problem notifications (or the
recovery), and hourly windows whose sends are still unfinished `late_alert_minutes` (15) after
the window ended (or caught up since), as of the run's time (docs/operations.md). The settings named here
are keys of the JSON Variable `birthday_settings` (README, *Settings*).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, setup, task, teardown
from airflow.timetables.trigger import CronTriggerTimetable

from birthday_pipeline.ids import ALERTS_CONN, DB_CONN, SEND_BATCH_TASK, SWEEP_DAG, WEBHOOK_CONN


@dag(
    dag_id=SWEEP_DAG,
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "birthday-pipeline", "retries": 3, "retry_delay": timedelta(seconds=5)},
    tags=["birthdays", "notifications"],
    doc_md=__doc__,
)
def birthday_sweep() -> None:
    @setup
    @task(multiple_outputs=False)
    def check_schema(db_conn_id: str = DB_CONN) -> dict:
        from birthday_pipeline.edge import schema_check

        return schema_check.check_schema(db_conn_id)

    @task
    def find_due(db_conn_id: str = DB_CONN) -> list[dict]:
        from birthday_pipeline.edge import sweep

        context = get_current_context()
        return sweep.find_due(db_conn_id, context.get("logical_date") or context["dag_run"].run_after)

    @task(task_id=SEND_BATCH_TASK, multiple_outputs=False)
    def send_batch(batch: dict, db_conn_id: str = DB_CONN,
                   webhook_conn_id: str = WEBHOOK_CONN, ti=None) -> dict:
        from birthday_pipeline.edge import sending

        return sending.send_batch(batch, db_conn_id, webhook_conn_id, from_sweep=True, ti=ti)

    @teardown
    @task(multiple_outputs=False)
    def summarize(db_conn_id: str = DB_CONN, alerts_conn_id: str = ALERTS_CONN) -> dict:
        from birthday_pipeline.edge import sweep

        context = get_current_context()
        return sweep.summarize(db_conn_id, context.get("logical_date") or context["dag_run"].run_after,
                               context["ti"], alerts_conn_id)

    # summarize is check_schema's teardown: it does not run against a database that failed the check.
    checked, due, summary = check_schema(), find_due(), summarize()
    checked >> due
    checked >> summary
    send_batch.expand(batch=due) >> summary


birthday_sweep()
