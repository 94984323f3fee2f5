"""Real Airflow services for end-to-end tests: scheduler, dag-processor, triggerer, API server and workers.

Each runs as its own process against a fresh PostgreSQL metadata database, with either LocalExecutor or
CeleryExecutor (a Redis broker and named Celery workers). Everything started is stopped on exit.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

PROJECT_DIR = Path(__file__).resolve().parent.parent
REDIS_URL_ENV = "BIRTHDAY_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
WORKER_NAME_ENV = "BIRTHDAY_WORKER_NAME"
# The parts of Airflow the API server's health report names, all of which the tests wait for.
HEALTHY = ("scheduler", "triggerer", "dag_processor")


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` for the tests: each Celery worker reports its own name."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def _server_ports() -> range:
    """Where ``free_port`` looks: below the kernel's ephemeral range (``ip_local_port_range``), where bind(0) and
    outgoing connections take their ports; empty where that range is unknown or starts too low."""
    try:
        lowest = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return range(0)
    return range(10_000, lowest)


def _port_candidates(ports: range) -> Iterator[int]:
    """``ports`` round and round, from a place of this process's own: two test processes seldom try one port."""
    start = random.randrange(len(ports))
    while True:
        yield from ports[start:]
        yield from ports[:start]


SERVER_PORTS = _server_ports()
_candidates = _port_candidates(SERVER_PORTS) if SERVER_PORTS else iter(())


def free_port() -> int:
    """A port on 127.0.0.1 nobody uses now, for a server another process binds next (an API server, Chromium).

    That process binds it seconds later on a loaded machine. A port from bind(0) would be one the kernel hands
    out again meanwhile to the hundreds of receivers and connections of the other pytest-xdist workers; one from
    SERVER_PORTS is only ever taken by another ``free_port``, which tries each port before handing it out."""
    for port in itertools.islice(_candidates, len(SERVER_PORTS)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
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


def airflow_cli(environment: dict[str, str], *arguments: str, timeout: float = 120) -> None:
    """Run an ``airflow`` command, again until it succeeds (a trigger fails until the DAG is parsed)."""
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run([sys.executable, "-m", "airflow", *arguments], env=environment,
                                capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"airflow {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
        time.sleep(2)


class AirflowServices:
    """The running services by name ("scheduler", "triggerer", ...): signal one, or stop and start it again."""

    def __init__(self, api_url: str, commands: dict[str, list[str]], environment: dict[str, str],
                 log_dir: Path) -> None:
        self.api_url = api_url
        self._commands = commands
        self._environment = environment
        self.log_dir = log_dir
        self._processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        """Start ``name``; its output is appended to ``<log_dir>/<name>.log``."""
        environment = {**self._environment, WORKER_NAME_ENV: name} if name.startswith("worker") else self._environment
        with (self.log_dir / f"{name}.log").open("ab") as log_file:
            self._processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *self._commands[name]],
                env=environment, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def signal(self, name: str, sent: int, *, whole_group: bool = True) -> None:
        """Send ``sent`` to ``name``, with its children (its process group) unless ``whole_group`` is false."""
        process = self._processes[name]
        if whole_group:
            _signal_group(process, sent)
        else:
            process.send_signal(sent)

    def wait(self, name: str, timeout: float) -> int:
        """Wait until ``name`` exits; its exit code."""
        return self._processes[name].wait(timeout)

    def stop_all(self, grace_seconds: float = 30) -> None:
        stop_processes(list(self._processes.values()), grace_seconds)

    def wait_until_healthy(self, timeout: int = 180, parts: tuple[str, ...] = HEALTHY) -> None:
        """Wait until the API server reports ``parts`` healthy (none: until it answers at all)."""
        _wait_until_healthy(self.api_url, list(self._processes.values()), self.log_dir, timeout, parts)


@contextmanager
def airflow_services(environment: dict[str, str], log_dir: Path, celery_workers: int = 0) -> Iterator[AirflowServices]:
    """Run the Airflow services with ``environment``; yield them once the API server reports them healthy."""
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
        # A task runner's calls to the execution API time out after 5 s by default, and its task fails: beside
        # the other pytest-xdist workers on 2 cores the API server sometimes answers later than that.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
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
    services = AirflowServices(api_url, commands, environment, log_dir)
    try:
        # The API server first, answering before anything that calls it starts: on a loaded machine it takes
        # longer to start than a task does to be scheduled, and a task whose runner finds no API server fails.
        services.start("api-server")
        services.wait_until_healthy(parts=())
        for name in commands:
            if name != "api-server":
                services.start(name)
        services.wait_until_healthy()
        yield services
    finally:
        services.stop_all()


def stop_processes(processes: list[subprocess.Popen], grace_seconds: float = 30) -> None:
    """Stop ``processes`` and everything they started: SIGTERM to each one's process group, SIGKILL to what is
    left after ``grace_seconds``. Descendants are looked up before and after the grace period, since some leave
    their parent's group (task runners, Celery pool processes) or outlive it, and one left running would go on
    sending to this test's receiver and writing to its databases while the next test runs."""
    descendants = _descendants(processes)
    for process in processes:
        _signal_group(process, signal.SIGCONT)
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    descendants += _descendants(processes)
    for process in processes:
        _signal_group(process, signal.SIGKILL)
        process.wait()
    for descendant in descendants:
        try:
            descendant.kill()
        except psutil.NoSuchProcess:
            pass


def _descendants(processes: list[subprocess.Popen]) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            found += psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    return found


def _signal_group(process: subprocess.Popen, stop_signal: int) -> None:
    """Signal ``process``'s group, or the process alone when it leads none (started in its parent's group)."""
    try:
        os.killpg(process.pid, stop_signal)
    except ProcessLookupError:
        if process.poll() is None:
            process.send_signal(stop_signal)


def _wait_until_healthy(api_url: str, processes: list[subprocess.Popen], log_dir: Path, timeout: int = 180,
                        parts: tuple[str, ...] = HEALTHY) -> None:
    """Wait until the API server reports ``parts`` healthy (none: until it answers at all)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exited = [process.args for process in processes if process.poll() is not None]
        if exited:
            raise RuntimeError(f"Airflow services exited: {exited}; logs in {log_dir}")
        try:
            with urllib.request.urlopen(f"{api_url}/api/v2/monitor/health", timeout=2) as response:
                health = json.load(response)
            if all(health[part]["status"] == "healthy" for part in parts):
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow services not healthy within {timeout} s; logs in {log_dir}")


@contextmanager
def plugin_api_server(home: Path, passwords: dict[str, str], base_path: str = "",
                      environment: dict[str, str] | None = None) -> Iterator[str]:
    """An Airflow API server with this project's plugin, on the session's metadata database and environment
    (plus ``environment``), whose users (all Airflow viewers) log in with ``passwords``, served under the
    base URL path ``base_path`` (e.g. ``/airflow``); yields its URL, base path included."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{base_path}"
    log_path = home / "api-server.log"
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(passwords), encoding="utf-8")
    server_environment = {
        **os.environ,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API_AUTH__JWT_SECRET": "birthday-pipeline-page-test-jwt-secret",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:viewer" for user in passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "PYTHONPATH": str(PROJECT_DIR),
        **(environment or {}),
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--port", str(port)],
                                   env=server_environment, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
            try:
                # The plugin's routes are mounted once they ask for a login.
                if get(f"{url}/birthdays/openapi.json")[0] == 401:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-4000:]
            time.sleep(1)
        yield url
    finally:
        stop_processes([process])


def login(api_url: str, user: str, password: str) -> str:
    """The JWT Airflow's own login endpoint gives ``user``."""
    request = urllib.request.Request(
        f"{api_url}/auth/token", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"username": user, "password": password}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    """GET ``url`` as the holder of ``token``, following no redirect: the status and the JSON (or the headers)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if body[:1] in (b"{", b"[") else body
    except urllib.error.HTTPError as error:
        return error.code, error.headers


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
