"""
### Birthday retention (daily)

Keeps the history bounded, so that what every hourly run, sweep and page request reads follows the day's
work, not the years behind it. Each run, as of its own logical time `T` (never the wall clock), deletes:

- attempt rows (`notification_attempts`) that started more than `attempt_retention_days` (90)
  days before `T`;
- notifications celebrated more than `retention_days` (400, at least 366) days before `T`, with
  their remaining attempt rows.

It never deletes a notification whose instant is inside the late window (`max_lateness_hours`
before `T`: the sweep would plan it again), one still `scheduled`, `sending` or failed retryably, or a row another
transaction holds; so deleting history never makes a sent notification plannable again, and never touches
what a send is working on. It deletes in batches of 1,000 rows, each its own short transaction, so it runs
beside live sends without delaying a claim or an upsert. Running it again deletes nothing more; the task
log has one line with the counts.

Trigger it by hand (no parameters) to prune at once. Task `check_schema` runs first and fails at once,
saying what to run, when `birthday_db` lacks a migration this code needs. The settings named here are keys
of the JSON Variable `birthday_settings` (README, *Settings*).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from birthday_pipeline.ids import DB_CONN, RETENTION_DAG


@dag(
    dag_id=RETENTION_DAG,
    # Once a day, off the busiest hours of the 9 AM sends (East and South Asia, Europe, the Americas).
    schedule=CronTriggerTimetable("30 20 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    # A missed day is caught up by the next run, which deletes everything older than its own date.
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "birthday-pipeline", "retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["birthdays", "operations"],
    doc_md=__doc__,
)
def birthday_retention() -> None:
    @task(multiple_outputs=False)
    def check_schema(db_conn_id: str = DB_CONN) -> dict:
        from birthday_pipeline.edge import schema_check

        return schema_check.check_schema(db_conn_id)

    @task(multiple_outputs=False)
    def delete_old_history(db_conn_id: str = DB_CONN) -> dict:
        from birthday_pipeline.edge import retention

        context = get_current_context()
        return retention.delete_old_history(db_conn_id, context.get("logical_date") or context["dag_run"].run_after)

    check_schema() >> delete_old_history()


birthday_retention()
