"""`make compose-test`: docker-compose.yaml run for real under podman, on stand-in images built here.

No registry here serves the official images, so this builds stand-ins with the names the compose file and
docker/Dockerfile use (all cached: the rootfs under ``.local/compose``, the images in podman's store):

1. a Debian bookworm rootfs by ``debootstrap`` from the Debian mirror, imported as ``localhost/debian-standin``
   (plus this machine's own CA certificates from /usr/local/share/ca-certificates, so that pip and apt in the
   builds pass its egress proxy);
2. from it, tools/compose_standins/*: ``apache/airflow:<version>-python3.11`` (Debian's Python 3.11, Airflow
   from PyPI under requirements.txt as constraints), ``postgres:16`` (PostgreSQL 16 of the pgserver wheel the
   lock pins) and ``redis:7.2-bookworm`` (Debian's redis-server);
3. the project's image from docker/Dockerfile through the compose file's own ``build`` section.

Then it brings the stack up with podman-compose (from PyPI), runs each service's health check itself until it
first passes (podman schedules them with systemd timers, and there is no systemd here), starts each service once
the conditions of its ``depends_on`` hold (podman 4.3 cannot wait for ``service_healthy``, and its ``--requires``
restarts finished one-shot services), releases a demo instant as `make run` does, and checks what a user would
see: the receiver printed the messages, the database has them sent, and the instant's batches went to several
Celery workers. With ``--scale-to N`` it then scales the workers to N and does it again. It tears the stack down at the
end (``--keep`` leaves it up) and exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
import yaml

from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.ids import HOURLY_DAG, RELEASE_GROUP, SEND_BATCH_TASK, SETTINGS_VARIABLE
from birthday_pipeline.settings import Settings
from tools.demo import demo_send_time, demo_users
from tools.dev import trigger_demo_release

log = logging.getLogger("compose-test")

PROJECT_DIR = Path(__file__).resolve().parent.parent
WORK_DIR = PROJECT_DIR / ".local" / "compose"
STANDINS_DIR = PROJECT_DIR / "tools" / "compose_standins"
COMPOSE_FILE = PROJECT_DIR / "docker-compose.yaml"
DOCKERFILE = PROJECT_DIR / "docker" / "Dockerfile"
REQUIREMENTS = PROJECT_DIR / "requirements.txt"
PROJECT_NAME = "birthday-compose-test"
PODMAN_COMPOSE = "podman-compose==1.6.0"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = "localhost/debian-standin:bookworm"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
# The settings of the demo instant: small batches, so that one instant makes many of them.
DEMO_BATCH_SIZE = 4
HEALTH_INTERVAL_SECONDS = 10
SEND_BATCH_TASK_ID = f"{RELEASE_GROUP}.{SEND_BATCH_TASK}"


class ComposeTestError(Exception):
    """A check of the compose run failed; the message says which and what was seen."""


def run(*command: str | Path, capture: bool = True, check: bool = True, **kwargs: Any) -> str:
    """Run a command; its standard output as text when captured (stderr joins the error when it fails)."""
    result = subprocess.run([str(part) for part in command], capture_output=capture, text=True, check=False,
                            **kwargs)
    if check and result.returncode != 0:
        detail = f": {result.stderr.strip()[-2000:]}" if capture else ""
        raise ComposeTestError(f"{' '.join(map(str, command))} exited {result.returncode}{detail}")
    return result.stdout if capture else ""


def timed(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            result = function(*args, **kwargs)
            log.info("%s: %.0f s", what, time.monotonic() - started)
            return result
        return wrapper
    return decorate


# --- images ------------------------------------------------------------------------------------------------


def qualified(image: str) -> str:
    """The name podman stores a Docker Hub short name under (``postgres:16`` -> docker.io/library/postgres:16)."""
    name = image.split("/")
    if len(name) == 1:
        return f"docker.io/library/{image}"
    return image if "." in name[0] else f"docker.io/{image}"


def image_exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


def locked_version(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(?P<version>[^\s#;]+)", REQUIREMENTS.read_text(encoding="utf-8"),
                      re.M)
    if not match:
        raise ComposeTestError(f"requirements.txt pins no {package}==")
    return match["version"]


def airflow_base_image() -> str:
    match = re.search(r"^FROM\s+(?P<image>\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    if not match:
        raise ComposeTestError("docker/Dockerfile has no FROM line")
    return match["image"]


@timed("Debian rootfs (debootstrap) and base image")
def build_base_image() -> None:
    if image_exists(BASE_IMAGE):
        log.info("Base image %s: cached", BASE_IMAGE)
        return
    rootfs = WORK_DIR / f"rootfs-{DEBIAN_SUITE}"
    if not (rootfs / "etc" / "debian_version").exists():
        partial = WORK_DIR / f"rootfs-{DEBIAN_SUITE}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        log.info("debootstrap %s from %s into %s", DEBIAN_SUITE, DEBIAN_MIRROR, rootfs)
        run("debootstrap", "--variant=minbase", "--include=ca-certificates,curl", DEBIAN_SUITE, partial,
            DEBIAN_MIRROR)
        partial.rename(rootfs)
    for certificate in sorted(LOCAL_CA_DIR.glob("*.crt")):
        shutil.copy2(certificate, rootfs / "usr" / "local" / "share" / "ca-certificates" / certificate.name)
    run("chroot", rootfs, "update-ca-certificates")
    for cache in [rootfs / "var" / "lib" / "apt" / "lists", rootfs / "var" / "cache" / "apt" / "archives"]:
        for entry in cache.glob("*"):
            if entry.is_file():
                entry.unlink()
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        run("podman", "import", "--quiet", "-", BASE_IMAGE, stdin=tar.stdout)


def build_context(name: str) -> Path:
    """A fresh build context for one stand-in: its files from tools/compose_standins/<name>."""
    context = WORK_DIR / "context" / name
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(STANDINS_DIR / name, context)
    return context


def extract_pgserver(context: Path) -> None:
    """PostgreSQL 16 from the pgserver wheel the lock pins, in the wheel's own layout (its binaries find their
    libraries at $ORIGIN/../../../pgserver.libs)."""
    wheels = WORK_DIR / "wheels"
    version = locked_version("pgserver")
    if not list(wheels.glob(f"pgserver-{version}-*.whl")):
        run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--dest", wheels, f"pgserver=={version}")
    wheel = next(wheels.glob(f"pgserver-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.startswith(("pgserver/pginstall/", "pgserver.libs/")):
                continue
            target = context / "pgserver" / member.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            target.chmod((member.external_attr >> 16) & 0o777 or 0o644)


def build_standin(name: str, image: str, *build_args: str) -> None:
    started = time.monotonic()
    context = build_context(name)
    if name == "postgres":
        extract_pgserver(context)
    if name == "airflow":
        shutil.copy2(REQUIREMENTS, context / "constraints.txt")
    arguments = [argument for build_arg in build_args for argument in ("--build-arg", build_arg)]
    run("podman", "build", *arguments, "--tag", qualified(image), context)
    log.info("Stand-in %s (%s): %.0f s", qualified(image), name, time.monotonic() - started)


def build_images(compose: Compose) -> None:
    build_base_image()
    airflow_image = airflow_base_image()
    build_standin("postgres", compose.image_of("postgres"))
    build_standin("redis", compose.image_of("redis"))
    build_standin("airflow", airflow_image, f"AIRFLOW_VERSION={locked_version('apache-airflow')}")
    started = time.monotonic()
    # One service is enough: every Airflow service names the same image and build (podman-compose would build
    # it once per service, in parallel).
    compose.podman_compose("build", compose.built_service())
    log.info("Project image (docker/Dockerfile FROM %s): %.0f s", airflow_image, time.monotonic() - started)


# --- the stack ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    name: str
    service: str
    state: str
    exit_code: int
    hostname: str
    healthcheck: list[str]  # the compose file's `test`, e.g. ["CMD-SHELL", "..."]; empty: none
    healthcheck_timeout_seconds: float

    @property
    def has_healthcheck(self) -> bool:
        return bool(self.healthcheck)


class Compose:
    """The compose file run under podman-compose as project PROJECT_NAME, and its containers."""

    def __init__(self, podman_compose: Path) -> None:
        self.podman_compose_bin = podman_compose
        self.spec: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
        self.services: dict[str, dict[str, Any]] = {
            name: service for name, service in self.spec["services"].items() if not service.get("profiles")
        }
        self.healthy: dict[str, float] = {}  # container name -> seconds after start when first healthy
        self.started_at = time.monotonic()

    def image_of(self, service: str) -> str:
        return str(self.services[service]["image"])

    def built_service(self) -> str:
        return next(name for name, service in self.services.items() if service.get("build"))

    def podman_compose(self, *arguments: str, capture: bool = True) -> str:
        return run(self.podman_compose_bin, "--project-name", PROJECT_NAME, "--file", COMPOSE_FILE, *arguments,
                   capture=capture, cwd=PROJECT_DIR)

    def containers(self) -> list[Container]:
        listing = json.loads(run("podman", "ps", "--all", "--format", "json", "--filter",
                                 f"label=io.podman.compose.project={PROJECT_NAME}") or "[]")
        containers = []
        for entry in listing:
            name = entry["Names"][0]
            inspected = json.loads(run("podman", "inspect", name))[0]
            healthcheck = inspected["Config"].get("Healthcheck") or {}
            containers.append(Container(
                name=name,
                service=entry["Labels"]["com.docker.compose.service"],
                state=inspected["State"]["Status"],
                exit_code=int(inspected["State"]["ExitCode"]),
                hostname=inspected["Config"]["Hostname"],
                healthcheck=list(healthcheck.get("Test") or []),
                healthcheck_timeout_seconds=int(healthcheck.get("Timeout") or 30 * 10**9) / 10**9,
            ))
        return containers

    def of(self, service: str) -> list[Container]:
        return [container for container in self.containers() if container.service == service]

    def check_health(self) -> None:
        """What Docker's health checks do, until a container is first healthy: run its `test` in it.

        Not `podman healthcheck run`: podman 4.3 runs the check without the container's HOSTNAME in the
        environment, and /bin/sh (dash) does not set it, so the worker's `celery ... ping -d
        "celery@$${HOSTNAME}"` would ask no node; Docker passes it. Once healthy, a container is not checked
        again: each check starts a Python with Airflow, and on two cores repeating them slows every other check
        past its 10 s timeout.
        """
        for container in self.containers():
            if container.state == "running" and container.has_healthcheck and container.name not in self.healthy:
                kind, *test = container.healthcheck
                command = ["/bin/sh", "-c", *test] if kind == "CMD-SHELL" else test
                try:
                    passed = subprocess.run(["podman", "exec", "--env", f"HOSTNAME={container.hostname}",
                                             container.name, *command], capture_output=True, check=False,
                                            timeout=container.healthcheck_timeout_seconds).returncode == 0
                except subprocess.TimeoutExpired:
                    passed = False
                if passed:
                    self.healthy[container.name] = time.monotonic() - self.started_at
                    log.info("healthy: %s after %.0f s", container.name, self.healthy[container.name])

    def condition_holds(self, service: str, condition: str) -> bool:
        containers = self.of(service)
        if not containers:
            return False
        for container in containers:
            if container.state == "exited" and container.exit_code != 0:
                raise ComposeTestError(f"{container.name} exited {container.exit_code}:\n"
                                       + run("podman", "logs", "--tail", "40", container.name, check=False))
        if condition == "service_completed_successfully":
            return all(container.state == "exited" for container in containers)
        if condition == "service_healthy":
            return all(container.name in self.healthy for container in containers)
        return all(container.state == "running" for container in containers)

    def depends_on(self, service: str) -> dict[str, str]:
        raw = self.services[service].get("depends_on") or {}
        if isinstance(raw, list):
            return dict.fromkeys(raw, "service_started")
        return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}

    @timed("Stack up (every service started after its depends_on conditions held)")
    def up(self, timeout_seconds: int = 900) -> None:
        """Start each service once its dependencies' conditions hold, as `docker compose up` waits for them."""
        self.started_at = time.monotonic()
        pending = list(self.services)
        deadline = time.monotonic() + timeout_seconds
        while pending:
            for service in list(pending):
                if all(self.condition_holds(dependency, condition)
                       for dependency, condition in self.depends_on(service).items()):
                    log.info("starting %s", service)
                    self.podman_compose("up", "--detach", "--no-deps", service)
                    pending.remove(service)
            if time.monotonic() > deadline:
                raise ComposeTestError(f"not started within {timeout_seconds} s: {pending}")
            time.sleep(2)

    def wait_until_all_healthy(self, timeout_seconds: int = 600) -> None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            waiting = [container.name for container in self.containers()
                       if container.has_healthcheck and container.name not in self.healthy]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise ComposeTestError(f"not healthy within {timeout_seconds} s: {waiting}")
            time.sleep(2)

    def scale_workers(self, workers: int) -> None:
        self.podman_compose("up", "--detach", "--no-deps", "--scale", f"airflow-worker={workers}",
                            "airflow-worker")

    def ip_address(self, service: str) -> str:
        container = self.of(service)[0].name
        return run("podman", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                   container).strip()

    def airflow_cli(self, *arguments: str) -> None:
        """One `airflow` command in the scheduler's container; CalledProcessError with its stderr on failure."""
        container = self.of("airflow-scheduler")[0].name
        subprocess.run(["podman", "exec", container, "airflow", *arguments], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def down(self) -> None:
        """Everything of the project, also workers added by ``--scale`` (plain `down` knows only the file's)."""
        self.podman_compose("down", "--volumes", "--remove-orphans", capture=True)

    def require_workers(self, expected: int) -> int:
        workers = len(self.of("airflow-worker"))
        if workers != expected:
            raise ComposeTestError(f"{workers} Celery workers running, not {expected}")
        return workers


@contextmanager
def health_checks(compose: Compose) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            compose.check_health()
            stop.wait(HEALTH_INTERVAL_SECONDS)

    thread = threading.Thread(target=loop, name="health-checks", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- a demo instant, delivered -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    instant: datetime
    users: int
    planned: int
    sent: int
    batches: list[dict[str, Any]]  # run_id, task_id, map_index, try_number, messages, hostname, container


def database_url(compose: Compose, database: str) -> str:
    environment = compose.services["postgres"]["environment"]
    return (f"postgresql://{environment['POSTGRES_USER']}:{environment['POSTGRES_PASSWORD']}"
            f"@{compose.ip_address('postgres')}:5432/{database}")


def release_demo_instant(compose: Compose, batch_size: int) -> tuple[datetime, int]:
    """Demo users due a few minutes from now, the settings that make it their send time, and the release."""
    now = datetime.now(UTC)
    send_time = demo_send_time(now)
    instant = now.replace(hour=send_time.hour, minute=send_time.minute, second=0, microsecond=0)
    if instant <= now:
        instant += timedelta(days=1)
    users = demo_users(now, send_time)
    with closing(psycopg2.connect(database_url(compose, "birthday"))) as conn, conn.cursor() as cursor:
        cursor.executemany(load_sql("demo/insert_users"), users)
        conn.commit()
    settings = {**Settings().as_json(), "send_local_time": send_time.strftime("%H:%M"), "batch_size": batch_size}
    compose.airflow_cli("variables", "set", SETTINGS_VARIABLE, json.dumps(settings))
    trigger_demo_release(compose.airflow_cli, instant, timeout_seconds=300)
    log.info("Released: %d demo users, instant %s, batch_size %d", len(users), instant.isoformat(), batch_size)
    return instant, len(users)


def api_token(compose: Compose) -> tuple[str, str]:
    """The API server's base URL and a token for user `airflow` (SimpleAuthManager's generated password)."""
    apiserver = compose.of("airflow-apiserver")[0].name
    passwords = json.loads(run("podman", "exec", apiserver, "cat",
                               "/opt/airflow/simple_auth_manager_passwords.json.generated"))
    base = f"http://{compose.ip_address('airflow-apiserver')}:8080"
    request = urllib.request.Request(f"{base}/auth/token", method="POST",
                                     data=json.dumps({"username": "airflow", "password": passwords["airflow"]})
                                     .encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return base, json.load(response)["access_token"]


def task_try_hostname(base: str, token: str, batch: dict[str, Any]) -> str:
    path = (f"/api/v2/dags/{HOURLY_DAG}/dagRuns/{urllib.parse.quote(batch['run_id'], safe='')}/taskInstances/"
            f"{batch['task_id']}/{batch['map_index']}/tries/{batch['try_number']}")
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["hostname"])


def wait_for_delivery(compose: Compose, instant: datetime, users: int, timeout_seconds: int = 900) -> Delivery:
    """Wait until every notification due at ``instant`` is sent; then which worker sent which batch."""
    deadline = time.monotonic() + timeout_seconds
    url = database_url(compose, "birthday")
    while True:
        with closing(psycopg2.connect(url)) as conn, conn.cursor(
                cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(load_sql("demo/instant_delivery"), {"send_at": instant})
            counts = cursor.fetchone()
            if counts["planned"] and counts["sent"] == counts["planned"]:
                cursor.execute(load_sql("demo/instant_batches"), {"send_at": instant, "dag_id": HOURLY_DAG})
                batches = [dict(row) for row in cursor.fetchall()]
                break
        if time.monotonic() > deadline:
            raise ComposeTestError(f"instant {instant.isoformat()}: {counts['sent']} of {counts['planned']} sent "
                                   f"after {timeout_seconds} s")
        time.sleep(5)
    base, token = api_token(compose)
    hosts = {run("podman", "inspect", "--format", "{{.Config.Hostname}}", container.name).strip(): container.name
             for container in compose.of("airflow-worker")}
    for batch in batches:
        batch["hostname"] = task_try_hostname(base, token, batch)
        batch["container"] = hosts.get(batch["hostname"], "(not a worker of this stack)")
    return Delivery(instant, users, counts["planned"], counts["sent"], batches)


def received_lines(compose: Compose) -> list[str]:
    receiver = compose.of("receiver")[0].name
    output = subprocess.run(["podman", "logs", receiver], capture_output=True, text=True, check=False)
    return [line for line in (output.stdout + output.stderr).splitlines() if line.strip()]


def report(compose: Compose, delivery: Delivery, workers: int) -> None:
    log.info("Instant %s: %d notifications planned, %d sent (the hourly run's batches; the sweep sends the "
             "demo users due earlier today)", delivery.instant.isoformat(), delivery.planned, delivery.sent)
    for batch in delivery.batches:
        log.info("  batch map_index=%s try=%s: %d messages from worker host %s (%s)", batch["map_index"],
                 batch["try_number"], batch["messages"], batch["hostname"], batch["container"])
    per_worker: Counter[str] = Counter()
    for batch in delivery.batches:
        per_worker[batch["container"]] += batch["messages"]
    log.info("Messages per worker with %d workers: %s", workers, dict(sorted(per_worker.items())))
    if sum(per_worker.values()) != delivery.sent:
        raise ComposeTestError(f"attempts of the batches account for {sum(per_worker.values())} messages, "
                               f"not the {delivery.sent} sent")
    if len(per_worker) < 2:
        raise ComposeTestError(f"the instant's batches did not spread: all from {list(per_worker)}")
    messages = [line for line in received_lines(compose) if re.search(r" #\d+ ", line)]
    at_instant = [line for line in messages if datetime.fromisoformat(line.split()[0]) >= delivery.instant]
    log.info("Receiver: %d messages printed in all, %d of them since the instant; the first and the last:",
             len(messages), len(at_instant))
    for line in at_instant[:2] + at_instant[-1:]:
        log.info("  receiver | %s", line)
    if len(at_instant) < delivery.sent:
        raise ComposeTestError(f"the receiver printed {len(at_instant)} messages since the instant, "
                               f"not the {delivery.sent} sent")


# --- the whole run ----------------------------------------------------------------------------------------


def podman_environment() -> None:
    """podman as it works here: runc, cgroupfs, no default ulimits (the container may not raise them)."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    conf = WORK_DIR / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                    'events_logger = "file"\n', encoding="utf-8")
    os.environ["CONTAINERS_CONF"] = str(conf)


def podman_compose_command() -> Path:
    venv = WORK_DIR / "venv"
    command = venv / "bin" / "podman-compose"
    if not command.exists():
        run(sys.executable, "-m", "venv", venv)
        run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", PODMAN_COMPOSE)
    return command


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-to", type=int, default=3, help="workers for the second instant (0: no second)")
    parser.add_argument("--keep", action="store_true", help="leave the stack up")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install podman runc debootstrap")
    podman_environment()
    compose = Compose(podman_compose_command())
    build_images(compose)
    compose.down()  # what an interrupted earlier run left
    (PROJECT_DIR / "logs").mkdir(exist_ok=True)
    try:
        with health_checks(compose):
            compose.up()
            compose.wait_until_all_healthy()
            workers = compose.require_workers(compose.services["airflow-worker"]["deploy"]["replicas"])
            log.info("All %d containers with a health check are healthy; %d Celery workers",
                     sum(1 for container in compose.containers() if container.has_healthcheck), workers)
            instant, users = release_demo_instant(compose, DEMO_BATCH_SIZE)
            report(compose, wait_for_delivery(compose, instant, users), workers)
            if arguments.scale_to:
                compose.scale_workers(arguments.scale_to)
                compose.wait_until_all_healthy()
                workers = compose.require_workers(arguments.scale_to)
                instant, users = release_demo_instant(compose, DEMO_BATCH_SIZE)
                report(compose, wait_for_delivery(compose, instant, users), workers)
        log.info("compose-test passed")
        return 0
    except ComposeTestError as error:
        log.error("compose-test FAILED: %s", error)
        return 1
    finally:
        if not arguments.keep:
            compose.down()
            log.info("Stack torn down (podman-compose down --volumes --remove-orphans)")


if __name__ == "__main__":
    sys.exit(main())
