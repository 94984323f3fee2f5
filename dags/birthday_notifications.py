"""
### Birthday notifications (hourly)

Every hour, plans the birthday messages whose send instant (09:00 local by default, in each user's own
time zone) falls in the **next** hour, and upserts one `notifications` row per user and birthday in the
`birthday_db` database.

**Which users a run serves** follows from the run alone, never from the clock: the run anchored at hour
`H` (its logical date, or `run_after` for a manual run without one) owns the send instants in
`[H + 1 h, H + 2 h)`. The window starts after the run does, so its batches are waiting before the first
instant comes. A manual run, a cleared run or `airflow backfill create --dag-id birthday_notifications
--from-date ... --to-date ...` plans exactly the windows of its logical dates; running a date again changes
nothing.

Task `check_schema` runs first: it fails at once, saying what to run, when `birthday_db` lacks a migration this
code needs (trigger `birthday_migrate`) or the users relation (`users_relation`) lacks a column.
Task `plan` returns the **release batches**: each distinct send instant of the window, split into runs of
`batch_size` rows (more per batch where that would exceed `[core] max_map_length` batches). For each
batch, the mapped group `release` defers a `DateTimeSensorAsync` until `release_lead_seconds` (30) before
the instant, then `send_batch` claims the batch's rows `prepare_seconds` (10) before the instant, prepares them
(connections, messages), reads them again just before it and POSTs them from the exact instant to connection
`birthday_webhook` (at most `max_in_flight` at once). Rows that fail retryably make the task fail
after recording them; Airflow retries it 5 s later (3 retries) and a retry sends only what is not sent.

Every occasion of the settings (birthdays and work anniversaries, and any the `occasions` setting adds) is
planned and released by the same tasks; a user with both on one day gets two messages with two webhook-ids.
Task `summarize` runs last, whatever happened before it, and logs one line per occasion: how many
notifications the window holds in each status. It is a teardown, so it never turns a failed run green.
With connection `birthday_alerts` it then sends the run's alert, once per run: notifications that
failed for good, expired or were invalid since the last alert, or the recovery after such a run
(docs/operations.md).

Settings are the keys of the JSON Variable `birthday_settings`, read once per task: `send_local_time`
(`09:00`), `feb29_rule` (`feb28` or `mar1`), `default_timezone` (`UTC`), `batch_size` (`2000`),
`max_lateness_hours` (`48`); the README lists them all.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, setup, task, task_group, teardown
from airflow.timetables.trigger import CronTriggerTimetable

from birthday_pipeline.edge.release_sensor import ReleaseSensor
from birthday_pipeline.ids import ALERTS_CONN, DB_CONN, HOURLY_DAG, RELEASE_GROUP, SEND_BATCH_TASK, WEBHOOK_CONN


@dag(
    dag_id=HOURLY_DAG,
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    # Missed hours are recovered by birthday_sweep; catching up would start one run per missed hour.
    catchup=False,
    # A run waits up to two hours for its window, so runs overlap; leave room for a backfill beside them.
    max_active_runs=4,
    default_args={"owner": "birthday-pipeline", "retries": 3, "retry_delay": timedelta(seconds=5)},
    tags=["birthdays", "notifications"],
    doc_md=__doc__,
)
def birthday_notifications() -> None:
    @setup
    @task(multiple_outputs=False)
    def check_schema(db_conn_id: str = DB_CONN) -> dict:
        from birthday_pipeline.edge import schema_check

        return schema_check.check_schema(db_conn_id)

    @task
    def plan(db_conn_id: str = DB_CONN) -> list[dict]:
        from birthday_pipeline.edge import hourly

        context = get_current_context()
        return hourly.plan(db_conn_id, context.get("logical_date") or context["dag_run"].run_after)

    @task(task_id=SEND_BATCH_TASK, multiple_outputs=False)
    def send_batch(batch: dict, db_conn_id: str = DB_CONN,
                   webhook_conn_id: str = WEBHOOK_CONN, ti=None) -> dict:
        from birthday_pipeline.edge import sending

        return sending.send_batch(batch, db_conn_id, webhook_conn_id, from_sweep=False, ti=ti)

    @task_group(group_id=RELEASE_GROUP)
    def release(release_at: str, batch: dict) -> None:
        wait = ReleaseSensor(task_id="wait_for_release", target_time=release_at, end_from_trigger=True)
        wait >> send_batch(batch)

    @teardown
    @task(multiple_outputs=False)
    def summarize(db_conn_id: str = DB_CONN, alerts_conn_id: str = ALERTS_CONN) -> dict:
        from birthday_pipeline.edge import hourly

        context = get_current_context()
        return hourly.summarize(db_conn_id, context.get("logical_date") or context["dag_run"].run_after,
                                context["ti"], alerts_conn_id)

    # summarize is check_schema's teardown: it does not run against a database that failed the check.
    checked, releases, summary = check_schema(), plan(), summarize()
    checked >> releases
    checked >> summary
    release.expand_kwargs(releases) >> summary


birthday_notifications()
