"""The opt-in cluster policy (docs/deploy.md) puts exactly the sending tasks into the pool birthday_send."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"

LOAD = """
import json, sys
from tests.airflow_dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(json.dumps({f"{dag.dag_id}.{task.task_id}": task.pool for dag in bag.dags.values() for task in dag.tasks}))
"""


def test_the_sending_tasks_and_only_they_run_in_the_pool(tmp_path: Path) -> None:
    settings = tmp_path / "config"
    settings.mkdir()
    # What docs/deploy.md has a deployment put in its airflow_local_settings.py.
    (settings / "airflow_local_settings.py").write_text(
        "from birthday_pipeline.edge.cluster_policy import task_policy  # noqa: F401\n", encoding="utf-8")
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD, str(DAGS_DIR)],
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=120, check=False)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    pools = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert {task for task, pool in pools.items() if pool == "birthday_send"} == {
        "birthday_notifications.release.send_batch", "birthday_sweep.send_batch", "birthday_resend.resend"}
    assert {pool for task, pool in pools.items() if pool != "birthday_send"} == {"default_pool"}
