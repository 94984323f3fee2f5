"""The body of ``check_schema``, the first task of every DAG: is the database at the version this code needs?"""

from __future__ import annotations

import logging
from contextlib import closing

from birthday_pipeline.edge.airflow_versions import task_exception
from birthday_pipeline.edge.connections import open_database
from birthday_pipeline.edge.variables import read_settings

log = logging.getLogger(__name__)


def check_schema(db_conn_id: str) -> dict[str, str]:
    """The first task of every DAG: fail at once, saying what to run, unless the database is at the version this
    code needs and the users relation has the columns the pipeline reads (one cheap query)."""
    from birthday_pipeline.schema.check import schema_problems
    from birthday_pipeline.schema.files import needed_version

    settings = read_settings()
    relation = settings.users_relation
    with closing(open_database(db_conn_id)) as conn:
        problems = schema_problems(conn, relation, settings.occasion_registry.date_columns, conn_id=db_conn_id,
                                   locale_column=settings.locale_column, opt_out_column=settings.opt_out_column)
    if problems:
        raise task_exception("AirflowFailException")("; ".join(problems))
    log.info("%s is at %s; the users relation %s has every column the pipeline reads", db_conn_id,
             needed_version(), relation)
    return {"version": needed_version(), "users_relation": str(relation)}
