"""
### Birthday migrate (manual only)

Applies the pipeline's pending migrations to the database that connection `birthday_db` names, so a
platform without a shell (MWAA, Cloud Composer) can migrate too; the same code runs from the command line
as `python -m birthday_pipeline.schema apply` (or `birthday-pipeline-migrate apply`). Trigger it after
every upgrade of the package: the first task of every other DAG fails at once, saying so, until it ran.

The task log lists each migration: applied, skipped (a migration of the bundled `users` table, in a
database whose `users` is the application's own), pending, or changed (refused). Migrations run once each,
under an advisory lock (two runs at once never interleave), and indexes on tables the application writes
are built `CONCURRENTLY`.

- **conn_id** (default `birthday_db`): another connection to the same database, for a role allowed to run
  DDL where the pipeline's own role is not (docs/deploy.md).
- **apply** (default on): untick to only list applied and pending migrations.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from birthday_pipeline.ids import DB_CONN, MIGRATE_DAG


@dag(
    dag_id=MIGRATE_DAG,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "birthday-pipeline", "retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["birthdays", "operations"],
    doc_md=__doc__,
    params={
        "conn_id": Param(DB_CONN, type="string", minLength=1, title="Connection",
                         description="The connection of the database to migrate (a role that may run DDL)."),
        "apply": Param(True, type="boolean", title="Apply",
                       description="Run the pending migrations; untick to only list them."),
    },
)
def birthday_migrate() -> None:
    @task(multiple_outputs=False)
    def migrate() -> dict:
        from birthday_pipeline.edge import migrate

        params = get_current_context()["params"]
        return migrate.migrate(params["conn_id"], apply=bool(params["apply"]))

    migrate()


birthday_migrate()
