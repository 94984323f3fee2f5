"""
### Birthday resend (manual only)

Sends chosen notifications again, for an operator who was told "user 42 got nothing". Trigger it from the
UI's **Trigger** form (or `airflow dags trigger birthday_resend --conf '{"user_ids": [42], "occasion":
"birthday", "date": "2026-03-10", "dry_run": false}'`):

- **user_ids**: the users, as a list of ids;
- **occasion**: an occasion of the settings (`birthday`, `work_anniversary` and any the `occasions` setting adds);
- **date**: the local date celebrated (the notification's `occasion_date`);
- **dry_run** (default **on**): the task log lists, per user, exactly what would be sent (notification id,
  instant, webhook-id) or why not, and nothing is sent;
- **force** (default off): a notification already `sent` is refused, with when and under which webhook-id
  it went out; with force it is sent again with a **new** webhook-id. A user who opted out (the column the
  `opt_out_column` setting names holds true) is refused too, and sent to only with force.

A notification never delivered (`failed`, `expired`, `cancelled`, or `scheduled` with its instant passed)
is sent under its own webhook-id, so a receiver that saw an earlier attempt de-duplicates it. Nothing is
sent before its instant, nothing under another task's live claim, nothing `invalid`. Sending goes through
the same code as the hourly release (re-check against `users`, signed POST to connection
`birthday_webhook`, attempt rows). The run ends with one summary line per occasion. Task `check_schema` runs
first and fails at once, saying what to run, when `birthday_db` lacks a migration this code needs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from birthday_pipeline.ids import DB_CONN, RESEND_DAG, RESEND_TASK, WEBHOOK_CONN


@dag(
    dag_id=RESEND_DAG,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "birthday-pipeline", "retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["birthdays", "operations"],
    doc_md=__doc__,
    params={
        "user_ids": Param([], type="array", items={"type": "integer"}, minItems=1, title="User ids",
                          description="The users whose notification to send again."),
        # Free text: the occasions are settings, read by the task (never at parse time); it names the known ones.
        "occasion": Param("birthday", type="string", minLength=1, title="Occasion",
                          description="An occasion of the settings, such as birthday or work_anniversary."),
        "date": Param(type="string", format="date", title="Date",
                      description="The local date celebrated (YYYY-MM-DD)."),
        "dry_run": Param(True, type="boolean", title="Dry run",
                         description="Only log what would be sent; send nothing."),
        "force": Param(False, type="boolean", title="Force",
                       description="Send again, with a new webhook-id, notifications already sent."),
    },
)
def birthday_resend() -> None:
    @task(multiple_outputs=False)
    def check_schema(db_conn_id: str = DB_CONN) -> dict:
        from birthday_pipeline.edge import schema_check

        return schema_check.check_schema(db_conn_id)

    @task(task_id=RESEND_TASK, multiple_outputs=False)
    def resend(db_conn_id: str = DB_CONN, webhook_conn_id: str = WEBHOOK_CONN) -> dict:
        from birthday_pipeline.edge import resend

        context = get_current_context()
        return resend.resend(dict(context["params"]), context["dag_run"].run_after, db_conn_id, webhook_conn_id,
                             context["ti"])

    check_schema() >> resend()


birthday_resend()
