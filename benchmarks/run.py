"""The benchmark suite: ``python -m benchmarks.run [--quick] [--phase NAME]`` (``make bench``, ``make bench-quick``).

Measures planning over a large user table, every recurring query without and with a year of history
(``benchmarks/history.py``), the send throughput of one send task against a bare client at the same number
in flight, a send task's peak memory for 1x and 10x the batch size, the release of one
instant's rows through the real hourly DAG on real Airflow services, one instant of millions of users in one
zone (planning, its batches against ``max_map_length``, a drained sample and the arithmetic to a billion users),
and the same instant's batches on CeleryExecutor with one and two workers. Prints a table, writes
``benchmarks/results/latest.json`` and ends with one line ``RESULT key=value ...``.

Each figure is measured in the same run as its reference, so ratios hold on a noisy machine. Everything
runs in its own databases (``birthday_bench``, ``airflow_bench``, ``airflow_bench_page``,
``airflow_bench_celery``) on the embedded PostgreSQL under ``.local/postgres-bench`` or on the server named by
``BIRTHDAY_POSTGRES_URL``; the Celery phase needs Redis (``BIRTHDAY_REDIS_URL``, as the Celery test does).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2

from benchmarks.history import bench_history
from benchmarks.measure import percentile, timed, vacuum_analyze
from benchmarks.sql import execute, load_sql
from benchmarks.users import busiest_window, copy_users
from birthday_pipeline.ids import HOURLY_DAG, RELEASE_GROUP, SEND_BATCH_TASK, SETTINGS_VARIABLE
from birthday_pipeline.plan.planning import PlanResult, ReleaseBatch, hourly_window, plan_window
from birthday_pipeline.schema.runner import apply_migrations
from birthday_pipeline.settings import SETTINGS_ENVIRONMENT, Settings
from tools import local_postgres

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS_FILE = PROJECT_DIR / "benchmarks" / "results" / "latest.json"
APP_DATABASE = "birthday_bench"
AIRFLOW_DATABASE = "airflow_bench"
DAG_ID = HOURLY_DAG
RECEIVER_LATENCY_SECONDS = 0.1
PHASES = ("planning", "sending", "dag", "instant", "scale")
PLAN_REPEATS = 3
# How far ahead of its instant a measured send task starts: its process start and the default prepare_seconds (10)
# fit before it, so its figures count from the instant as a user sees them.
SEND_LEAD_SECONDS = 15
# How far ahead of the moment they all start posting the bare clients of the drain are told it, once all are ready.
BARE_LEAD_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each measurement is; ``send_rows`` is 10x ``batch_size`` (the 10x memory run)."""

    plan_small: int
    plan_large: int
    batch_size: int
    in_flight: int
    dag_rows: int

    @property
    def send_rows(self) -> int:
        return 10 * self.batch_size


FULL = Sizes(plan_small=1_000_000, plan_large=10_000_000, batch_size=2000, in_flight=500, dag_rows=10_000)
QUICK = Sizes(plan_small=100_000, plan_large=1_000_000, batch_size=2000, in_flight=500, dag_rows=10_000)
# The test's size: the same code path in seconds, figures meaningless.
TINY = Sizes(plan_small=1_000, plan_large=10_000, batch_size=20, in_flight=10, dag_rows=40)


@dataclasses.dataclass(frozen=True)
class InstantSizes:
    """The one-instant and scale-out phases: users due at one instant, batches drained, sends in flight per task."""

    users: int
    sample_batches: int
    scale_in_flight: int


# Full: more users at one instant than a billion in one zone would have (BILLION_INSTANT); beyond that only the
# planning time grows (about a minute a million here).
INSTANT_FULL = InstantSizes(users=3_000_000, sample_batches=8, scale_in_flight=10)
INSTANT_QUICK = InstantSizes(users=1_000_000, sample_batches=8, scale_in_flight=10)
INSTANT_TINY = InstantSizes(users=1_000, sample_batches=8, scale_in_flight=10)
# Birthdays due at one instant among a billion users in one zone (one in 365.2425 a day).
BILLION_INSTANT = round(1_000_000_000 / 365.2425)
ONE_ZONE = "Asia/Shanghai"
# Workers of the scale-out phase in turn: 2, 1, 1, 2, so a drift of the machine's load hits both counts alike.
SCALE_RUNS = (2, 1, 1, 2)
SCALE_AIRFLOW_DATABASE = "airflow_bench_celery"


def label(count: int) -> str:
    """1_000_000 -> '1m', 100_000 -> '100k', 40 -> '40'."""
    for suffix, unit in (("m", 1_000_000), ("k", 1_000)):
        if count >= unit and count % unit == 0:
            return f"{count // unit}{suffix}"
    return str(count)


# --- databases ---------------------------------------------------------------------------------------------


# --- planning ----------------------------------------------------------------------------------------------


def time_planning(conn: Any, settings: Settings) -> tuple[float, int]:
    """Median seconds to plan the busiest hour from scratch, and the rows it writes."""
    window, _ = busiest_window(settings)
    seconds = []
    for _ in range(PLAN_REPEATS):
        execute(conn, "reset_notifications")
        seconds.append(timed(lambda: plan_window(conn, window, settings)))
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notifications")
        (rows,) = cursor.fetchone()
    return statistics.median(seconds), rows


def time_write_floor(conn: Any) -> float:
    """Median seconds to insert the rows planning just wrote, with no planning: what no planner can beat."""
    execute(conn, "keep_planned", {"last_id": 0})
    seconds = []
    for _ in range(PLAN_REPEATS):
        execute(conn, "reset_notifications")
        seconds.append(timed(lambda: execute(conn, "write_planned")))
    return statistics.median(seconds)


def bench_planning(app_url: str, sizes: Sizes, settings: Settings) -> dict[str, Any]:
    small, large = label(sizes.plan_small), label(sizes.plan_large)
    window, share = busiest_window(settings)
    with closing(psycopg2.connect(app_url)) as conn:
        execute(conn, "reset")
        copy_users(conn, 1, sizes.plan_small)
        vacuum_analyze(conn, "users")
        small_s, small_rows = time_planning(conn, settings)
        small_floor = time_write_floor(conn)
        # The same seeded users as a load of all of them at once: the generator seeds by id.
        copy_users(conn, sizes.plan_small + 1, sizes.plan_large - sizes.plan_small)
        vacuum_analyze(conn, "users")
        large_s, large_rows = time_planning(conn, settings)
        large_floor = time_write_floor(conn)
    # The least ratio any planner could reach that kept the small run's cost and, at the large size, spent
    # nothing beyond writing its rows: planned rows grow with users, and so does the time to write them.
    floor_ratio = (small_s - small_floor + large_floor) / small_s
    return {
        "plan_window": f"{window.start.isoformat()}/{window.end.isoformat()}",
        "plan_window_user_share": round(share, 3),
        f"plan_s_{small}": small_s,
        f"plan_s_{large}": large_s,
        "plan_ratio": large_s / small_s,
        f"plan_rows_{small}": small_rows,
        f"plan_rows_{large}": large_rows,
        f"plan_write_floor_s_{small}": small_floor,
        f"plan_write_floor_s_{large}": large_floor,
        "plan_ratio_floor": floor_ratio,
    }


# --- sending -----------------------------------------------------------------------------------------------


@contextmanager
def receiver_process(latency: float) -> Iterator[str]:
    """The fixed-latency endpoint in its own process; yields its URL."""
    from tests.real_services import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.receiver", str(port), str(latency)],
                               stdout=subprocess.PIPE, text=True, cwd=PROJECT_DIR)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready", "receiver did not start"
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        process.terminate()
        process.wait(timeout=10)


def task_environment(app_url: str, receiver_url: str, sizes: Sizes, send_local_time: str) -> dict[str, str]:
    """What a send task sees: both connections and every setting in ``birthday_settings``, from the environment."""
    settings = Settings(batch_size=sizes.batch_size, max_in_flight=sizes.in_flight, send_local_time=send_local_time)
    return {
        **os.environ,
        SETTINGS_ENVIRONMENT: json.dumps(settings.as_json()),
        "AIRFLOW_CONN_BIRTHDAY_DB": local_postgres.airflow_connection(app_url),
        "AIRFLOW_CONN_BIRTHDAY_WEBHOOK": json.dumps({"conn_type": "http", "host": receiver_url,
                                                     "password": "whsec_" + "YmVuY2htYXJrLXNpZ25pbmcta2V5"}),
        "PYTHONPATH": str(PROJECT_DIR),
    }


def start_send_task(environment: dict[str, str], mode: str, batch: ReleaseBatch, in_flight: int,
                    together: bool = False) -> subprocess.Popen:
    command = [sys.executable, "-m", "benchmarks.send_task", mode, json.dumps(batch.to_json()), str(in_flight)]
    return subprocess.Popen(command + (["together"] if together else []), env=environment, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_DIR)


def send_task_figures(process: subprocess.Popen, mode: str) -> dict[str, Any]:
    """What a send task process started by ``start_send_task`` printed, once it ended."""
    stdout, stderr = process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("BENCH ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"send task ({mode}) failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("BENCH "))


def run_send_task(environment: dict[str, str], mode: str, batch: ReleaseBatch, in_flight: int) -> dict[str, Any]:
    return send_task_figures(start_send_task(environment, mode, batch, in_flight), mode)


def run_pipeline_at_instant(app_url: str, receiver_url: str, sizes: Sizes, batch: ReleaseBatch) -> dict[str, Any]:
    """The send task of ``batch``, its rows moved to an instant ``SEND_LEAD_SECONDS`` ahead: it claims and
    prepares before the instant and posts from it, as the hourly DAG's task does."""
    instant = (datetime.now(UTC) + timedelta(seconds=SEND_LEAD_SECONDS)).replace(microsecond=0)
    with closing(psycopg2.connect(app_url)) as conn:
        execute(conn, "move_instant", {"send_at": instant, "first_id": batch.first_id, "last_id": batch.last_id})
    environment = task_environment(app_url, receiver_url, sizes, instant.strftime("%H:%M:%S"))
    return run_send_task(environment, "pipeline", dataclasses.replace(batch, send_at=instant), sizes.in_flight)


def run_bare_together(environment: dict[str, str], batches: list[ReleaseBatch], in_flight: int) -> float:
    """One bare client per batch, all posting from the same moment once every one has its bodies ready; the seconds
    from that moment until the last one's last answer."""
    processes = [start_send_task(environment, "bare", batch, in_flight, together=True) for batch in batches]
    for process in processes:
        assert process.stdout is not None and process.stdin is not None
        if process.stdout.readline().strip() != "READY":
            raise RuntimeError(f"a bare client did not get ready: {send_task_figures(process, 'bare')}")
    start_at = time.time() + BARE_LEAD_SECONDS
    for process in processes:
        process.stdin.write(f"{start_at}\n")
        process.stdin.flush()
    runs = [send_task_figures(process, "bare") for process in processes]
    for run, batch in zip(runs, batches, strict=True):
        if run["sent"] != batch.size:
            raise RuntimeError(f"a bare client delivered {run['sent']} of {batch.size} rows: {run}")
    return max(run["finished_at"] for run in runs) - start_at


def bench_sending(app_url: str, receiver_url: str, sizes: Sizes) -> dict[str, Any]:
    """One send task with 1x the batch size, then the bare client and a send task with 10x, twice, interleaved.

    A send task's time counts from its batch's instant (it claims and prepares before it), the bare client's from
    its first request (its bodies are built before). Each side keeps its better run, so a burst of load from
    elsewhere on the machine hits both alike.
    """
    instant = (datetime.now(UTC) - timedelta(seconds=2)).replace(microsecond=0)
    one_x, ten_x = sizes.batch_size, sizes.send_rows
    with closing(psycopg2.connect(app_url)) as conn:
        execute(conn, "reset")
        execute(conn, "due_users", {"count": one_x + 2 * ten_x, "born": instant.date().replace(year=1990),
                                    "send_at": instant, "occasion_date": instant.date()})
        vacuum_analyze(conn, "notifications")
    environment = task_environment(app_url, receiver_url, sizes, instant.strftime("%H:%M:%S"))
    small_batch = ReleaseBatch(instant, 1, one_x, one_x)
    # Two sets of 10x rows: a send task sends a row once; the bare client may post the same bodies again.
    large_batches = [ReleaseBatch(instant, one_x + 1 + n * ten_x, one_x + (n + 1) * ten_x, ten_x) for n in (0, 1)]
    pipeline_1x = run_pipeline_at_instant(app_url, receiver_url, sizes, small_batch)
    bare, pipeline = [], []
    for batch in large_batches:
        bare.append(run_send_task(environment, "bare", batch, sizes.in_flight))
        pipeline.append(run_pipeline_at_instant(app_url, receiver_url, sizes, batch))
    for run, rows in ((pipeline_1x, one_x), *((run, ten_x) for run in bare + pipeline)):
        if run["sent"] != rows:
            raise RuntimeError(f"a send run delivered {run['sent']} of {rows} rows: {run}")
    send_per_s = max(ten_x / run["seconds"] for run in pipeline)
    ceiling_per_s = max(ten_x / run["seconds"] for run in bare)
    peak_10x = max(run["peak_rss_mb"] for run in pipeline)
    return {
        "send_rows": ten_x,
        "max_in_flight": sizes.in_flight,
        "send_per_s": send_per_s,
        "ceiling_per_s": ceiling_per_s,
        "send_ratio": send_per_s / ceiling_per_s,
        # CPU per message, the send task's (its recorder's and heartbeat's threads included) over the bare client's.
        "send_cpu_ratio": min(run["cpu_s"] for run in pipeline) / min(run["cpu_s"] for run in bare),
        "send_peak_rss_mb_1x": pipeline_1x["peak_rss_mb"],
        "send_peak_rss_mb_10x": peak_10x,
        "send_rss_ratio": peak_10x / pipeline_1x["peak_rss_mb"],
        "send_runs_s": {"bare": [run["seconds"] for run in bare], "pipeline": [run["seconds"] for run in pipeline],
                        "pipeline_phases": [{key: run[key] for key in ("ready_s", "http_s", "record_s", "cpu_s")}
                                            for run in pipeline],
                        "bare_cpu_s": [run["cpu_s"] for run in bare]},
    }


# --- the hourly DAG on real Airflow services ---------------------------------------------------------------


def airflow_environment(app_url: str, receiver_url: str, sizes: Sizes, metadata_url: str, home: Path,
                        lead_seconds: int, executor: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The environment of real Airflow services on metadata database ``metadata_url`` with ``executor``'s settings,
    the scheduler's own schedule off, and the settings to store in ``birthday_settings`` once they are up (not in
    the environment, which Airflow would read first, so that each run can set its send time)."""
    environment = {
        **task_environment(app_url, receiver_url, sizes, "09:00:00"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": local_postgres.sqlalchemy_url(metadata_url),
        **executor,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    settings = {**json.loads(environment.pop(SETTINGS_ENVIRONMENT)), "release_lead_seconds": lead_seconds}
    return environment, settings


def trigger_instant(environment: dict[str, str], settings: dict[str, Any], app_url: str, users: int,
                    instant: datetime, run_id: str | None = None) -> None:
    """``users`` users due at ``instant``, its send time in ``birthday_settings``, and a triggered run of the hourly
    DAG (named ``run_id``, if given) that owns the instant."""
    from tests.real_services import airflow_cli

    with closing(psycopg2.connect(app_url)) as conn:
        execute(conn, "reset")
        execute(conn, "due_users", {"count": users, "born": instant.date().replace(year=1990),
                                    "send_at": instant, "occasion_date": instant.date()})
        # Planning upserts these rows; they only stand in for users whose instant is the benchmark's.
        execute(conn, "reset_notifications")
    airflow_cli(environment, "variables", "set", SETTINGS_VARIABLE,
                json.dumps({**settings, "send_local_time": instant.strftime("%H:%M:%S")}))
    # Any moment of the hour before the instant anchors the run that owns it.
    airflow_cli(environment, "dags", "trigger", DAG_ID, *(["--run-id", run_id] if run_id else []), "--logical-date",
                (instant - timedelta(hours=1, microseconds=-1)).isoformat())


def bench_dag(server: str, app_url: str, receiver_url: str, sizes: Sizes, lead_seconds: int) -> dict[str, Any]:
    """Release ``dag_rows`` rows due at one instant through a triggered run of the hourly DAG.

    The scheduler makes no runs of its own (``use_job_schedule`` off), so the triggered run is the only
    one that plans and releases the instant.
    """
    from tests.real_services import airflow_services

    metadata_url = local_postgres.fresh_database(server, AIRFLOW_DATABASE)
    home = Path(tempfile.mkdtemp(prefix="birthday-bench-airflow-"))
    environment, settings = airflow_environment(app_url, receiver_url, sizes, metadata_url, home, lead_seconds,
                                                {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"})
    with airflow_services(environment, home):
        instant = (datetime.now(UTC) + timedelta(seconds=lead_seconds + 45)).replace(microsecond=0)
        trigger_instant(environment, settings, app_url, sizes.dag_rows, instant)
        deadline = instant + timedelta(seconds=120)
        with closing(psycopg2.connect(app_url)) as conn:
            conn.autocommit = True
            while True:
                with conn.cursor() as cursor:
                    cursor.execute(load_sql("delivery_outcome"), {"instant": instant})
                    sent, drain_s = cursor.fetchone()
                if sent >= sizes.dag_rows or datetime.now(UTC) > deadline:
                    break
                time.sleep(0.5)
            with conn.cursor() as cursor:
                cursor.execute(load_sql("batch_lateness"), {"instant": instant})
                lateness = [row[0] for row in cursor.fetchall()]
        # Let the last send tasks report success before the services stop.
        time.sleep(3)
    if sent != sizes.dag_rows:
        raise RuntimeError(f"the hourly DAG delivered {sent} of {sizes.dag_rows} rows within 120 s; logs in {home}")
    # The reference: the same messages, batch for batch, each batch posted by a bare client, all from one moment.
    with closing(psycopg2.connect(app_url)) as conn, conn.cursor() as cursor:
        cursor.execute(load_sql("instant_batches"), {"instant": instant})
        batches = [ReleaseBatch(instant, first_id, last_id, size) for first_id, last_id, size in cursor.fetchall()]
    drain_bare_s = run_bare_together(task_environment(app_url, receiver_url, sizes, "09:00:00"), batches,
                                     sizes.in_flight)
    with closing(psycopg2.connect(metadata_url)) as metadata, metadata.cursor() as cursor:
        cursor.execute(load_sql("triggered_run"), {"dag_id": DAG_ID})
        (run_id,) = cursor.fetchone()
        cursor.execute(load_sql("run_task_instances"), {"dag_id": DAG_ID, "run_id": run_id})
        (task_instances,) = cursor.fetchone()
    return {
        "dag_rows": sizes.dag_rows,
        "dag_batches": len(lateness),
        "first_request_lateness_p99_s": percentile(lateness, 0.99),
        "first_request_lateness_max_s": max(lateness),
        f"drain_{label(sizes.dag_rows)}_s": drain_s,
        f"drain_{label(sizes.dag_rows)}_bare_s": drain_bare_s,
        "drain_ratio": drain_s / drain_bare_s,
        "task_instances_per_10k": task_instances * 10_000 / sizes.dag_rows,
    }


# --- one instant at a billion users ------------------------------------------------------------------------


def bench_instant(app_url: str, receiver_url: str, sizes: Sizes, instant: InstantSizes) -> dict[str, Any]:
    """Plan ``instant.users`` users of one zone due at one instant; drain a sample of its batches.

    The instant is just past, so the sampled send tasks (one after another, each in its own process, as on one
    worker slot) send at once instead of waiting for it.
    """
    from birthday_pipeline.edge.airflow_versions import airflow_conf
    from birthday_pipeline.edge.hourly import releases
    from birthday_pipeline.edge.variables import max_mapped_tasks

    max_map_length = max_mapped_tasks()
    due = (datetime.now(UTC) - timedelta(seconds=2)).replace(microsecond=0)
    local = due.astimezone(ZoneInfo(ONE_ZONE))
    send_local_time = local.strftime("%H:%M:%S")
    settings = Settings(batch_size=sizes.batch_size, max_in_flight=sizes.in_flight, send_local_time=send_local_time)
    with closing(psycopg2.connect(app_url)) as conn:
        execute(conn, "reset")
        execute(conn, "one_zone_users", {"first_id": 1, "last_id": instant.users, "zone": ONE_ZONE,
                                         "born": local.date().replace(year=1990)})
        vacuum_analyze(conn, "users")
        planned: list[PlanResult] = []
        plan_s = timed(lambda: planned.append(plan_window(conn, hourly_window(due - timedelta(hours=1)), settings,
                                                          max_map_length)))
    batches = planned[0].batches
    if sum(batch.size for batch in batches) != instant.users or {batch.send_at for batch in batches} != {due}:
        raise RuntimeError(f"planning released {sum(batch.size for batch in batches)} of {instant.users} users "
                           f"due at {due.isoformat()}")
    environment = task_environment(app_url, receiver_url, sizes, send_local_time)
    sample = batches[:instant.sample_batches]
    runs = [run_send_task(environment, "pipeline", batch, sizes.in_flight) for batch in sample]
    sample_rows = sum(batch.size for batch in sample)
    if sum(run["sent"] for run in runs) != sample_rows:
        raise RuntimeError(f"the sampled batches delivered {sum(run['sent'] for run in runs)} of {sample_rows} rows")
    sample_s = sum(run["task_s"] for run in runs)  # the instant is past: each task's whole time is its slot's
    per_worker = sample_rows / sample_s
    return {
        "instant_users": instant.users,
        "instant_zone": ONE_ZONE,
        "instant_plan_s": plan_s,
        "instant_batches": len(batches),
        "instant_rows_per_batch": max(batch.size for batch in batches),
        "instant_xcom_bytes": len(json.dumps(releases(batches, settings))),
        "airflow_max_map_length": max_map_length,
        "airflow_triggerer_capacity": airflow_conf().getint("triggerer", "capacity", fallback=1000),
        "instant_sample_batches": len(sample),
        "instant_sample_rows": sample_rows,
        "instant_sample_s": sample_s,
        "instant_rows_per_s_per_worker": per_worker,
        "instant_1b_due": BILLION_INSTANT,
        "instant_workers_for_1b_in_60s": math.ceil(BILLION_INSTANT / (per_worker * 60)),
    }


# --- growing with Celery workers ---------------------------------------------------------------------------


def bench_scale_out(server: str, app_url: str, receiver_url: str, sizes: Sizes, instant: InstantSizes,
                    rows_per_batch: int, lead_seconds: int) -> dict[str, Any]:
    """``sample_batches`` batches of ``rows_per_batch`` due at one instant, released by the hourly DAG on
    CeleryExecutor with two and then one worker (``SCALE_RUNS``), ``scale_in_flight`` sends in flight per task,
    against the 100 ms receiver. Each worker runs 4 tasks at once, so 8 batches need both workers."""
    from tests.real_services import airflow_services, redis_url

    metadata_url = local_postgres.fresh_database(server, SCALE_AIRFLOW_DATABASE)
    home = Path(tempfile.mkdtemp(prefix="birthday-bench-celery-"))
    task_sizes = dataclasses.replace(sizes, batch_size=rows_per_batch, in_flight=instant.scale_in_flight)
    environment, settings = airflow_environment(app_url, receiver_url, task_sizes, metadata_url, home, lead_seconds, {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": redis_url(),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
        # A worker takes a task only when a slot is free, so the instant's batches spread over the workers.
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        # A queue of this run's own: another run on the same Redis neither takes nor drops its tasks.
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"birthday_bench_{uuid.uuid4().hex}",
    })
    users = instant.sample_batches * rows_per_batch
    runs: list[dict[str, Any]] = []
    with airflow_services(environment, home, celery_workers=2) as services:
        for number, workers in enumerate(SCALE_RUNS):
            if workers == 1 and (not runs or runs[-1]["workers"] == 2):
                services.signal("worker-2", signal.SIGTERM)
                services.wait("worker-2", timeout=120)
            elif workers == 2 and runs and runs[-1]["workers"] == 1:
                services.start("worker-2")
            runs.append({"workers": workers, **release_one_instant(environment, settings, app_url, metadata_url,
                                                                   users, f"bench_scale_{number}", lead_seconds)})
    best = {count: max(run["sends_per_s"] for run in runs if run["workers"] == count) for count in (1, 2)}
    return {
        "scale_batches": instant.sample_batches,
        "scale_rows": users,
        "scale_in_flight_per_task": instant.scale_in_flight,
        "scale_sends_per_s_1": best[1],
        "scale_sends_per_s_2": best[2],
        "scale_ratio": best[2] / best[1],
        "scale_runs": runs,
    }


def release_one_instant(environment: dict[str, str], settings: dict[str, Any], app_url: str, metadata_url: str,
                        users: int, run_id: str, lead_seconds: int) -> dict[str, Any]:
    """``users`` users due at one instant, released by a triggered run ``run_id`` of the hourly DAG: its sends/s
    (first request to last answer) and how many batches each worker sent."""
    # Time for the plan task and a restarted worker before the sensors let go.
    instant = (datetime.now(UTC) + timedelta(seconds=lead_seconds + 40)).replace(microsecond=0)
    trigger_instant(environment, settings, app_url, users, instant, run_id)
    deadline = instant + timedelta(seconds=300)
    with closing(psycopg2.connect(app_url)) as conn:
        conn.autocommit = True
        while True:
            with conn.cursor() as cursor:
                cursor.execute(load_sql("send_span"))
                sent, seconds = cursor.fetchone()
            if sent >= users or datetime.now(UTC) > deadline:
                break
            time.sleep(0.5)
    if sent != users:
        raise RuntimeError(f"run {run_id} delivered {sent} of {users} rows within 300 s of its instant")
    # Let the last send tasks report success before the workers change.
    time.sleep(3)
    with closing(psycopg2.connect(metadata_url)) as metadata, metadata.cursor() as cursor:
        cursor.execute(load_sql("batches_by_worker"),
                       {"dag_id": DAG_ID, "run_id": run_id, "task_id": f"{RELEASE_GROUP}.{SEND_BATCH_TASK}"})
        by_worker = dict(cursor.fetchall())
    return {"sends_per_s": users / seconds, "seconds": seconds, "batches_by_worker": by_worker}


# --- report ------------------------------------------------------------------------------------------------


def targets(figures: dict[str, Any], sizes: Sizes) -> list[tuple[str, str, bool]]:
    """Every target whose figure the phases run have measured: a figure, its target, and whether it is met."""
    large = label(sizes.plan_large)
    drain = f"drain_{label(sizes.dag_rows)}_s"
    checks: list[tuple[str, str, Callable[[], bool]]] = [
        ("send_ratio", ">= 0.9", lambda: figures["send_ratio"] >= 0.9),
        ("first_request_lateness_p99_s", "<= 0.05", lambda: figures["first_request_lateness_p99_s"] <= 0.05),
        ("first_request_lateness_max_s", "<= 0.1", lambda: figures["first_request_lateness_max_s"] <= 0.1),
        (drain, "<= 10", lambda: figures[drain] <= 10),
        ("drain_ratio", "<= 1.2", lambda: figures["drain_ratio"] <= 1.2),
        (f"plan_s_{large}", "<= 2", lambda: figures[f"plan_s_{large}"] <= 2),
        ("plan_ratio", "<= 2", lambda: figures["plan_ratio"] <= 2),
        ("task_instances_per_10k", "<= 50", lambda: figures["task_instances_per_10k"] <= 50),
        ("send_peak_rss_mb_10x", "<= 1.2 x send_peak_rss_mb_1x",
         lambda: figures["send_peak_rss_mb_10x"] <= 1.2 * figures["send_peak_rss_mb_1x"]),
        *((name, "<= 1.3", lambda name=name: figures[name] <= 1.3)
          for name in figures if name.startswith("history_ratio_")),
        *((name, "<= 250", lambda name=name: figures[name] <= 250)
          for name in ("history_page_day_p95_ms_with", "history_page_user_p95_ms_with")),
        ("instant_batches", "<= airflow_max_map_length",
         lambda: figures["instant_batches"] <= figures["airflow_max_map_length"]),
        ("scale_ratio", ">= 1.7", lambda: figures["scale_ratio"] >= 1.7),
    ]
    return [(name, target, met()) for name, target, met in checks if name in figures]


def formatted(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def report(figures: dict[str, Any], checks: list[tuple[str, str, bool]]) -> str:
    verdicts = {name: (target, ok) for name, target, ok in checks}
    width = max(map(len, figures))
    lines = [f"{'figure':<{width}}  {'value':>12}  target"]
    for name, value in figures.items():
        target, ok = verdicts.get(name, ("", None))
        verdict = "" if ok is None else f"{target:<30} {'PASS' if ok else 'MISS'}"
        lines.append(f"{name:<{width}}  {formatted(value):>12}  {verdict}")
    lines.append("RESULT " + " ".join(f"{name}={formatted(value)}" for name, value in figures.items()
                                      if isinstance(value, int | float)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="100k and 1M users for planning and history; under 5 minutes")
    mode.add_argument("--tiny", action="store_true", help="tiny sizes: the code path only (used by a test)")
    parser.add_argument("--phase", action="append", choices=PHASES,
                        help="run only this phase (again for more; default: all, in this order: "
                             f"{', '.join(PHASES)}); 'planning' includes the year of history")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    arguments = parser.parse_args(argv)
    sizes = TINY if arguments.tiny else QUICK if arguments.quick else FULL
    instant = INSTANT_TINY if arguments.tiny else INSTANT_QUICK if arguments.quick else INSTANT_FULL
    phases = set(arguments.phase or PHASES)

    started = time.monotonic()
    server = local_postgres.server_url(local_postgres.LOCAL_DIR / "postgres-bench")
    app_url = local_postgres.fresh_database(server, APP_DATABASE)
    with closing(psycopg2.connect(app_url)) as conn:
        apply_migrations(conn)
    settings = Settings()
    figures: dict[str, Any] = {"mode": "tiny" if arguments.tiny else "quick" if arguments.quick else "full"}
    lead_seconds = 20 if arguments.tiny else 30
    if "planning" in phases:
        print(f"planning over {sizes.plan_small:,} and {sizes.plan_large:,} users ...", flush=True)
        figures |= bench_planning(app_url, sizes, settings)
        # Planning left every user in place: the year of history is generated for them.
        print(f"a year of history for {sizes.plan_large:,} users: every recurring path without and with it ...",
              flush=True)
        figures |= bench_history(server, app_url, sizes.plan_large, settings, busiest_window(settings)[0].start)
    with receiver_process(RECEIVER_LATENCY_SECONDS) as receiver_url:
        if "sending" in phases:
            print(f"sending {sizes.send_rows:,} rows at {sizes.in_flight} in flight ...", flush=True)
            figures |= bench_sending(app_url, receiver_url, sizes)
        if "dag" in phases:
            print(f"releasing {sizes.dag_rows:,} rows through the hourly DAG on real Airflow services ...", flush=True)
            figures |= bench_dag(server, app_url, receiver_url, sizes, lead_seconds=lead_seconds)
        if "instant" in phases:
            print(f"planning {instant.users:,} users of {ONE_ZONE} due at one instant, then sending "
                  f"{instant.sample_batches} of its batches ...", flush=True)
            figures |= bench_instant(app_url, receiver_url, sizes, instant)
        if "scale" in phases:
            # The one-instant phase's batches when it ran; batch_size ones otherwise.
            rows_per_batch = figures.get("instant_rows_per_batch", sizes.batch_size)
            print(f"{instant.sample_batches} batches of {rows_per_batch:,} rows on CeleryExecutor, with 2 then 1 "
                  "worker ...", flush=True)
            figures |= bench_scale_out(server, app_url, receiver_url, sizes, instant, rows_per_batch, lead_seconds)
    figures["wall_s"] = time.monotonic() - started
    checks = targets(figures, sizes)
    figures_json = {**figures, "targets": {name: {"target": target, "met": ok} for name, target, ok in checks}}
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(figures_json, indent=2, default=str) + "\n", encoding="utf-8")
    print(report(figures, checks), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
