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

Task `plan` returns the **release batches**: each distinct send instant of the window, split into runs of
at most `birthday_batch_size` rows.

Settings are Airflow Variables (or `AIRFLOW_VAR_<NAME>`): `birthday_send_local_time` (`09:00`),
`birthday_feb29_rule` (`feb28` or `mar1`), `birthday_default_timezone` (`UTC`), `birthday_batch_size`
(`500`), `birthday_max_lateness_hours` (`48`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

BIRTHDAY_DB_CONN_ID = "birthday_db"

log = logging.getLogger(__name__)


@dag(
    dag_id="birthday_notifications",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    # Missed hours are recovered by birthday_sweep; catching up would start one run per missed hour.
    catchup=False,
    # A run waits up to two hours for its window, so runs overlap; leave room for a backfill beside them.
    max_active_runs=4,
    default_args={"owner": "birthday-pipeline", "retries": 3, "retry_delay": timedelta(seconds=5)},
    tags=["birthdays", "notifications"],
    doc_md=__doc__,
)
def birthday_notifications() -> None:
    @task
    def plan(conn_id: str = BIRTHDAY_DB_CONN_ID) -> list[dict]:
        from contextlib import closing

        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        from include.birthdays.planning import hourly_window, plan_window
        from include.birthdays.settings import Settings

        context = get_current_context()
        window = hourly_window(context["logical_date"] or context["dag_run"].run_after)
        settings = Settings.from_variables(lambda name: Variable.get(name, default=None))
        with closing(PostgresHook(postgres_conn_id=conn_id).get_conn()) as conn:
            result = plan_window(conn, window, settings)
        log.info(
            "Planned window [%s, %s): %d rows upserted, %d release batches, %d rows to release",
            window.start.isoformat(), window.end.isoformat(), result.upserted, len(result.batches),
            sum(batch.size for batch in result.batches),
        )
        return [batch.to_json() for batch in result.batches]

    plan()


birthday_notifications()
