"""``make bench-quick``'s code path on tiny sizes, so the benchmarks cannot rot; no time is asserted.

It runs the whole suite (planning over seeded users loaded with COPY, a year of history for them with every
recurring path measured without and with it, the Birthdays page API on an Airflow API server, the send task
against the bare client, the hourly DAG on real Airflow services, one instant of one zone planned and sampled,
and the hourly DAG on CeleryExecutor with two and one worker) in its own databases on the test server. With
``BIRTHDAY_TEST_CELERY=0`` (a machine without Redis, as for the Celery end-to-end test) the Celery phase is left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tools.local_postgres import database_url

pytestmark = pytest.mark.long(minutes=10)  # every benchmark phase, real Airflow services (two executors) included

HISTORY_PATHS = ["plan", "sweep_find_due", "sweep_summarize", "hourly_summarize", "page_day_p95", "page_user_p95"]
REQUIRED_KEYS = [
    "plan_s_1k", "plan_s_10k", "plan_ratio", "send_per_s", "ceiling_per_s", "send_ratio",
    "send_cpu_ratio", "first_request_lateness_p99_s", "first_request_lateness_max_s", "drain_40_s", "drain_40_bare_s",
    "drain_ratio", "task_instances_per_10k", "send_peak_rss_mb_1x", "send_peak_rss_mb_10x",
    *(f"history_ratio_{path}" for path in HISTORY_PATHS),
    *(f"history_{path}_ms_{state}" for path in HISTORY_PATHS for state in ("without", "with")),
    "instant_users", "instant_plan_s", "instant_batches", "instant_rows_per_batch", "instant_xcom_bytes",
    "airflow_max_map_length", "airflow_triggerer_capacity", "instant_sample_rows", "instant_sample_s",
    "instant_rows_per_s_per_worker", "instant_workers_for_1b_in_60s",
]
SCALE_KEYS = ["scale_sends_per_s_1", "scale_sends_per_s_2", "scale_ratio"]


def test_the_benchmark_suite_runs_on_tiny_sizes_and_reports_every_figure(tmp_path) -> None:
    output = tmp_path / "latest.json"
    server = database_url(os.environ["BIRTHDAY_TEST_DATABASE_URL"], "postgres")
    celery = os.environ.get("BIRTHDAY_TEST_CELERY") != "0"
    phases = [] if celery else ["--phase", "planning", "--phase", "sending", "--phase", "dag", "--phase", "instant"]
    required = REQUIRED_KEYS + SCALE_KEYS if celery else REQUIRED_KEYS
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tiny", *phases, "--output", str(output)],
        env={**os.environ, "BIRTHDAY_POSTGRES_URL": server}, capture_output=True, text=True, timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    result_line = result.stdout.strip().splitlines()[-1]
    assert result_line.startswith("RESULT ")
    reported = dict(pair.split("=", 1) for pair in result_line.removeprefix("RESULT ").split())
    assert set(required) <= set(reported)
    figures = json.loads(output.read_text(encoding="utf-8"))
    assert figures["mode"] == "tiny"
    for name in required:
        assert float(reported[name]) == pytest.approx(figures[name], rel=1e-3, abs=1e-3), name
    # Every target is judged, met or not: the verdicts are the benchmark's output, not this test's.
    assert len(figures["targets"]) == 9 + len(HISTORY_PATHS) + 2 + 1 + celery
    # The history is one notification per user (10,000) and its attempt rows; the late window's rows are
    # loaded in both states.
    assert figures["history_rows"] == 10_000
    assert 10_000 * 0.99 < figures["history_attempt_rows"] < 10_000 * 1.02
    assert 0 < figures["history_recent_rows"] < 10_000 * 3 / 365 * 1.5
    # 40 rows in batches of 20: the check_schema setup, a plan task, a sensor and a send task per batch, and the
    # summarize teardown.
    assert figures["task_instances_per_10k"] == 7 * 10_000 / 40
    # One instant of 1,000 users in batches of 20 (well under max_map_length): 50 batches, every user planned,
    # and the 8 sampled batches delivered in full.
    assert (figures["instant_users"], figures["instant_batches"], figures["instant_rows_per_batch"]) == (1000, 50, 20)
    assert figures["instant_sample_rows"] == 8 * 20
    if celery:
        # Two runs with each worker count: one worker sent all 8 batches alone; with two, both sent some (each
        # runs 4 tasks at once, and the 8 are queued together when the instant's sensors let go).
        assert [run["workers"] for run in figures["scale_runs"]] == [2, 1, 1, 2]
        for run in figures["scale_runs"]:
            assert sum(run["batches_by_worker"].values()) == 8
            assert set(run["batches_by_worker"]) == {f"worker-{n}" for n in range(1, run["workers"] + 1)}
