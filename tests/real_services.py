"""Real Airflow services for end-to-end tests: scheduler, dag-processor, triggerer, API server and workers.

Each runs as its own process against a fresh PostgreSQL metadata database, with either LocalExecutor or
CeleryExecutor (a Redis broker and named Celery workers). Everything started is stopped on exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
REDIS_URL_ENV = "BIRTHDAY_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
WORKER_NAME_ENV = "BIRTHDAY_WORKER_NAME"


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` for the tests: each Celery worker reports its own name."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_url() -> str:
    """The Redis the Celery tests use; fails with a clear message when none answers."""
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), 2).close()
    except OSError as error:
        raise RuntimeError(
            f"No Redis answers at {url} ({error}). The Celery end-to-end test needs one: start Redis, name "
            f"another with {REDIS_URL_ENV}, or run `make test BIRTHDAY_TEST_CELERY=0` (see README)."
        ) from None
    return url


@contextmanager
def airflow_services(environment: dict[str, str], log_dir: Path, celery_workers: int = 0) -> Iterator[str]:
    """Run the Airflow services with ``environment``; yield the API server's URL."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    environment = {
        **environment,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "birthday-pipeline-e2e-jwt-secret",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.real_services.worker_hostname",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "PYTHONPATH": str(PROJECT_DIR),
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=environment, check=True,
                   capture_output=True)
    commands = {
        "api-server": ["api-server", "--port", str(port)],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer"],
        **{f"worker-{n}": ["celery", "worker", "--celery-hostname", f"worker-{n}@%h", "--concurrency", "4"]
           for n in range(1, celery_workers + 1)},
    }
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log_file = (log_dir / f"{name}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow", *command],
                    env={**environment, WORKER_NAME_ENV: name} if name.startswith("worker") else environment,
                    stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )
        _wait_until_healthy(api_url, processes, log_dir)
        yield api_url
    finally:
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, stop_signal: int) -> None:
    try:
        os.killpg(process.pid, stop_signal)
    except ProcessLookupError:
        pass


def _wait_until_healthy(api_url: str, processes: list[subprocess.Popen], log_dir: Path, timeout: int = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exited = [process.args for process in processes if process.poll() is not None]
        if exited:
            raise RuntimeError(f"Airflow services exited: {exited}; logs in {log_dir}")
        try:
            with urllib.request.urlopen(f"{api_url}/api/v2/monitor/health", timeout=2) as response:
                health = json.load(response)
            if all(health[part]["status"] == "healthy" for part in ("scheduler", "triggerer", "dag_processor")):
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow services not healthy within {timeout} s; logs in {log_dir}")
