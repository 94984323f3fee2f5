"""`make migrate` and `make run`: set up the databases and run Airflow with this project's DAGs.

Both use the server named by ``BIRTHDAY_POSTGRES_URL`` or, without it, an embedded PostgreSQL under
``.local/postgres`` that lives as long as this process. It holds the application database ``birthday``
and Airflow's metadata database ``airflow``; Airflow's home is ``.local/airflow``. With
``AIRFLOW_CONN_BIRTHDAY_DB`` set, `make migrate` migrates the database that connection names instead, through
the same code as the ``birthday_migrate`` DAG, and creates no database.

`make run` also starts the local webhook receiver (unless ``AIRFLOW_CONN_BIRTHDAY_WEBHOOK`` names another
endpoint), stores the pipeline's Variables, adds a demo cohort of users (``DEMO=0`` leaves them out) and
runs ``airflow standalone``, whose own output goes to ``.local/airflow/standalone.log``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta

import psycopg2

from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.ids import DB_CONN, HOURLY_DAG, SETTINGS_VARIABLE, SWEEP_DAG
from birthday_pipeline.schema import cli
from birthday_pipeline.schema.runner import apply_migrations
from birthday_pipeline.settings import Settings
from tools.demo import demo_send_time, demo_users
from tools.local_postgres import LOCAL_DIR, PROJECT_DIR, airflow_connection, ensure_database, server_url, sqlalchemy_url

log = logging.getLogger("birthday-pipeline")

AIRFLOW_HOME = LOCAL_DIR / "airflow"
API_URL = "http://localhost:8080"
RECEIVER_PORT = 8000
WEBHOOK_CONN_ENV = "AIRFLOW_CONN_BIRTHDAY_WEBHOOK"
DB_CONN_ENV = "AIRFLOW_CONN_BIRTHDAY_DB"


def migrate(server: str) -> str:
    """Create the application database if needed and apply its pending migrations; return its URL."""
    url = ensure_database(server, "birthday")
    with closing(psycopg2.connect(url)) as conn:
        applied = apply_migrations(conn)
    log.info("Application database ready: %d migrations applied now", len(applied))
    return url


def airflow_environment(server: str, app_url: str) -> dict[str, str]:
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(ensure_database(server, "airflow")),
        "AIRFLOW_CONN_BIRTHDAY_DB": airflow_connection(app_url),
        # `airflow standalone` starts its components through the `airflow` command of this virtualenv.
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }


def airflow(environment: dict[str, str], *arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "airflow", *arguments], env=environment, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def webhook_secret() -> str:
    """The signing secret of the local receiver, made once and kept under .local/."""
    path = LOCAL_DIR / "webhook-secret"
    if not path.exists():
        path.write_text("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def start_receiver(environment: dict[str, str]) -> subprocess.Popen | None:
    """Start the local receiver and point ``birthday_webhook`` at it, unless another endpoint is configured."""
    if WEBHOOK_CONN_ENV in os.environ:
        return None
    secret = webhook_secret()
    environment[WEBHOOK_CONN_ENV] = json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{RECEIVER_PORT}", "password": secret}
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tools.receiver", "--port", str(RECEIVER_PORT)],
        env={**environment, "BIRTHDAY_WEBHOOK_SECRET": secret},
    )


def store_variables(environment: dict[str, str], demo_time: str | None) -> None:
    """Store every setting in the one JSON Variable ``birthday_settings``, so the UI shows them all.

    A ``birthday_settings`` already there is kept (only the demo's send time changes in it); without one, it
    starts from the defaults.
    """
    path = LOCAL_DIR / "variables.json"
    airflow(environment, "variables", "export", str(path))
    current = json.loads(path.read_text(encoding="utf-8")).get(SETTINGS_VARIABLE)
    stored = json.loads(current) if isinstance(current, str) else current
    values = Settings().as_json() if stored is None else dict(stored)
    if demo_time:
        values["send_local_time"] = demo_time
    if values != stored:
        airflow(environment, "variables", "set", SETTINGS_VARIABLE, json.dumps(values))


def add_demo_users(app_url: str, now: datetime) -> tuple[str, int]:
    send_time = demo_send_time(now)
    users = demo_users(now, send_time)
    with closing(psycopg2.connect(app_url)) as conn, conn.cursor() as cursor:
        cursor.executemany(load_sql("demo/insert_users"), users)
        conn.commit()
    return send_time.strftime("%H:%M"), len(users)


def wait_until_healthy(standalone: subprocess.Popen, timeout_seconds: int = 300) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if standalone.poll() is not None:
            raise SystemExit(f"airflow standalone exited; see {AIRFLOW_HOME / 'standalone.log'}")
        try:
            with urllib.request.urlopen(f"{API_URL}/api/v2/monitor/health", timeout=2) as response:
                health = json.load(response)
            if all(health[part]["status"] == "healthy" for part in ("metadatabase", "scheduler", "triggerer")):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(2)
    raise SystemExit(f"Airflow was not healthy within {timeout_seconds} s; see {AIRFLOW_HOME / 'standalone.log'}")


def trigger_demo_release(run_airflow: Callable[..., object], instant: datetime, timeout_seconds: int = 120) -> None:
    """Release the demo instant now: run (or re-run) the hourly run whose window holds it, and the sweep.

    ``run_airflow(*arguments)`` runs one `airflow` command and raises ``CalledProcessError`` (with its stderr)
    when it fails: here on the host, in tools/compose_test.py inside a compose container.
    """
    logical_date = (instant.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)).isoformat()
    deadline = time.monotonic() + timeout_seconds
    while True:  # the DAGs exist once the dag-processor has parsed them
        try:
            run_airflow("dags", "trigger", SWEEP_DAG)
            break
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(5)
    try:
        run_airflow("dags", "trigger", HOURLY_DAG, "--logical-date", logical_date)
    except subprocess.CalledProcessError as error:
        if "already exists" not in error.stderr.decode(errors="replace"):
            raise
        # An earlier `make run` ran that hour already: clearing it re-plans with today's demo time.
        run_airflow("tasks", "clear", HOURLY_DAG, "--start-date", logical_date, "--end-date", logical_date, "--yes")


def require_free_ports(*ports: int) -> None:
    for port in ports:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"Port {port} is in use (another `make run` or Airflow?); stop it first.")


def run(server: str, demo: bool) -> int:
    """Everything `make run` needs, then Airflow until Ctrl-C; stops whatever it started."""
    require_free_ports(8080, RECEIVER_PORT)
    app_url = migrate(server)
    environment = airflow_environment(server, app_url)
    print("Preparing Airflow's database ...", flush=True)
    airflow(environment, "db", "migrate")
    now = datetime.now(UTC)
    demo_time, demo_count = add_demo_users(app_url, now) if demo else (None, 0)
    store_variables(environment, demo_time)
    receiver = start_receiver(environment)
    standalone_log = (AIRFLOW_HOME / "standalone.log").open("ab")
    # Its own process group, so that stopping reaches every component and task process it started.
    standalone = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=environment,
                                  stdout=standalone_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        print("Starting Airflow (scheduler, dag-processor, triggerer, API server) ...", flush=True)
        wait_until_healthy(standalone)
        if demo_time:
            hour, minute = map(int, demo_time.split(":"))
            instant = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
            trigger_demo_release(functools.partial(airflow, environment),
                                 instant if instant > now else instant + timedelta(days=1))
        print(guide(receiver is not None, demo_time, demo_count), flush=True)
        return standalone.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_group(standalone)
        if receiver is not None:
            receiver.terminate()
            receiver.wait(timeout=30)
        print("Stopped Airflow, the receiver and the embedded database.", flush=True)


def stop_group(process: subprocess.Popen, grace_seconds: int = 30) -> None:
    """SIGTERM the process group of ``process``; SIGKILL whatever is left of it after the grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and _group_alive(process):
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader, so only live members answer
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def guide(local_receiver: bool, demo_time: str | None, demo_count: int) -> str:
    lines = [
        "",
        f"Airflow is up: {API_URL}  (user admin; password in "
        f"{AIRFLOW_HOME / 'simple_auth_manager_passwords.json.generated'})",
        "DAGs: birthday_notifications (hourly), birthday_sweep (every 5 minutes) and birthday_retention (daily),"
        " all unpaused.",
        f"Airflow's own output: {AIRFLOW_HOME / 'standalone.log'}",
    ]
    if local_receiver:
        lines.append(f"Messages arrive at the local receiver on http://127.0.0.1:{RECEIVER_PORT}"
                     " and are printed below.")
    if demo_time:
        lines.append(
            f"Demo: {demo_count} users in many zones; send_local_time in birthday_settings is {demo_time} "
            "(UTC+0 users are due in about 3 minutes, users east of UTC were due earlier today and go out "
            "with the sweep). Set it back to 09:00 under Admin > Variables."
        )
    lines += ["Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["migrate", "run"])
    parser.add_argument("--no-demo", action="store_true", help="add no demo users")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Ctrl-C and SIGTERM both stop cleanly, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if arguments.command == "migrate" and DB_CONN_ENV in os.environ:
        return cli.main(["apply", "--conn-id", DB_CONN])
    server = server_url(LOCAL_DIR / "postgres")
    if arguments.command == "migrate":
        migrate(server)
        return 0
    return run(server, demo=not arguments.no_demo)


if __name__ == "__main__":
    sys.exit(main())
