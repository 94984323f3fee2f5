"""`make migrate` and `make run`: set up the databases and run Airflow with this project's DAGs.

Both use the server named by ``BIRTHDAY_POSTGRES_URL`` or, without it, an embedded PostgreSQL under
``.local/postgres`` that lives as long as this process. It holds the application database ``birthday``
and Airflow's metadata database ``airflow``; Airflow's home is ``.local/airflow``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from contextlib import closing

import psycopg2

from include.birthdays.migrations import apply_migrations
from tools.local_postgres import LOCAL_DIR, PROJECT_DIR, airflow_connection, ensure_database, server_url, sqlalchemy_url

log = logging.getLogger("birthday-pipeline")


def migrate(server: str) -> str:
    """Create the application database if needed and apply its pending migrations; return its URL."""
    url = ensure_database(server, "birthday")
    with closing(psycopg2.connect(url)) as conn:
        applied = apply_migrations(conn)
    log.info("Application database ready: %d migrations applied now", len(applied))
    return url


def airflow_environment(server: str, app_url: str) -> dict[str, str]:
    home = LOCAL_DIR / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(ensure_database(server, "airflow")),
        "AIRFLOW_CONN_BIRTHDAY_DB": airflow_connection(app_url),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
        # `airflow standalone` starts its components through the `airflow` command of this virtualenv.
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }


def run(server: str) -> int:
    """Run ``airflow standalone`` until it exits or Ctrl-C, then stop it and the embedded database."""
    environment = airflow_environment(server, migrate(server))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=environment, check=True)
    print(
        "\nAirflow is starting: UI at http://localhost:8080 (user admin, password in "
        f"{LOCAL_DIR / 'airflow' / 'simple_auth_manager_passwords.json.generated'}). Ctrl-C stops everything.\n",
        flush=True,
    )
    standalone = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=environment)
    try:
        return standalone.wait()
    except KeyboardInterrupt:
        standalone.send_signal(signal.SIGINT)
        return standalone.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["migrate", "run"])
    command = parser.parse_args().command
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = server_url(LOCAL_DIR / "postgres")
    if command == "migrate":
        migrate(server)
        return 0
    return run(server)


if __name__ == "__main__":
    sys.exit(main())
