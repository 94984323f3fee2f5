"""The command line of the migrations: ``python -m birthday_pipeline.schema {status,apply} [--conn-id ID]``,
also the console script ``birthday-pipeline-migrate``. Prints to stdout; errors to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from birthday_pipeline.ids import DB_CONN
from birthday_pipeline.schema.files import MigrationError
from birthday_pipeline.schema.runner import migrate_connection
from birthday_pipeline.schema.status import describe


def main(argv: Sequence[str] | None = None) -> int:
    """List (``status``) or apply (``apply``) the migrations of the database an Airflow connection names."""
    parser = argparse.ArgumentParser(prog="birthday-pipeline-migrate",
                                     description="List or apply the birthday pipeline's migrations on the database "
                                                 "an Airflow connection names.")
    parser.add_argument("command", choices=["status", "apply"], help="status: list applied and pending; apply: run")
    parser.add_argument("--conn-id", default=DB_CONN,
                        help="the Airflow connection (AIRFLOW_CONN_<ID>, a secrets backend or the metadata database)")
    arguments = parser.parse_args(argv)
    try:
        before, ran = migrate_connection(arguments.conn_id, apply=arguments.command == "apply")
    except MigrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(describe(before, conn_id=arguments.conn_id)))
    if arguments.command == "apply":
        print(f"{len(ran)} migrations applied" + (f": {', '.join(ran)}" if ran else ""))
    return 0
