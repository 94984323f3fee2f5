"""``make bench-quick``'s code path on tiny sizes, so the benchmarks cannot rot; no time is asserted.

It runs the whole suite (planning over seeded users loaded with COPY, a year of history for them with every
recurring path measured without and with it, the Birthdays page API on an Airflow API server, the send task
against the bare client, the hourly DAG on real Airflow services) in its own databases on the test server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tools.local_postgres import database_url

pytestmark = pytest.mark.long(minutes=4)  # every benchmark phase, real Airflow services included

HISTORY_PATHS = ["plan", "sweep_find_due", "sweep_summarize", "hourly_summarize", "page_day_p95", "page_user_p95"]
REQUIRED_KEYS = [
    "plan_s_1k", "plan_s_10k", "plan_ratio", "send_per_s", "ceiling_per_s", "send_ratio",
    "first_request_lateness_p99_s", "drain_40_s", "task_instances_per_10k", "send_peak_rss_mb_1x",
    "send_peak_rss_mb_10x",
    *(f"history_ratio_{path}" for path in HISTORY_PATHS),
    *(f"history_{path}_ms_{state}" for path in HISTORY_PATHS for state in ("without", "with")),
]


def test_the_benchmark_suite_runs_on_tiny_sizes_and_reports_every_figure(tmp_path) -> None:
    output = tmp_path / "latest.json"
    server = database_url(os.environ["BIRTHDAY_TEST_DATABASE_URL"], "postgres")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tiny", "--output", str(output)],
        env={**os.environ, "BIRTHDAY_POSTGRES_URL": server}, capture_output=True, text=True, timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    result_line = result.stdout.strip().splitlines()[-1]
    assert result_line.startswith("RESULT ")
    reported = dict(pair.split("=", 1) for pair in result_line.removeprefix("RESULT ").split())
    assert set(REQUIRED_KEYS) <= set(reported)
    figures = json.loads(output.read_text(encoding="utf-8"))
    assert figures["mode"] == "tiny"
    for name in REQUIRED_KEYS:
        assert float(reported[name]) == pytest.approx(figures[name], rel=1e-3, abs=1e-3), name
    # Every target is judged, met or not: the verdicts are the benchmark's output, not this test's.
    assert len(figures["targets"]) == 7 + len(HISTORY_PATHS) + 2
    # The history is one notification per user (10,000) and its attempt rows; the late window's rows are
    # loaded in both states.
    assert figures["history_rows"] == 10_000
    assert 10_000 * 0.99 < figures["history_attempt_rows"] < 10_000 * 1.02
    assert 0 < figures["history_recent_rows"] < 10_000 * 3 / 365 * 1.5
    # 40 rows in batches of 20: the check_schema setup, a plan task, a sensor and a send task per batch, and the
    # summarize teardown.
    assert figures["task_instances_per_10k"] == 7 * 10_000 / 40
