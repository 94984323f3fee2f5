"""The send task's body (``sending.send_batch``) in a process of its own, measuring what the replies cost it.

    python -m tests.reply_cost FIRST_ID LAST_ID

The connection ``birthday_webhook``, ``birthday_db`` and the settings come from the environment
(``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``). Prints one JSON line: the peak resident memory (``ru_maxrss``) before
the send, with every module it uses imported, and after it, in MiB; the seconds it took; the task's outcome.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import aiohttp  # noqa: F401 - imported before the baseline, as a running task has it
import airflow.providers.http.hooks.http  # noqa: F401
import airflow.providers.postgres.hooks.postgres  # noqa: F401

from birthday_pipeline.edge import sending
from birthday_pipeline.plan.planning import ReleaseBatch


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main(first_id: str, last_id: str) -> None:
    size = int(last_id) - int(first_id) + 1
    before = peak_mib()
    started = time.monotonic()
    try:
        outcome = sending.send_batch(ReleaseBatch(None, int(first_id), int(last_id), size).to_json(), "birthday_db",
                                     "birthday_webhook", from_sweep=False)
    except Exception as error:  # noqa: BLE001 - a failed batch is an outcome to report, not the test's failure
        outcome = {"raised": type(error).__name__}
    print(json.dumps({"peak_mib_before": round(before, 1), "peak_mib_after": round(peak_mib(), 1),
                      "seconds": round(time.monotonic() - started, 2), "outcome": outcome}))


if __name__ == "__main__":
    main(*sys.argv[1:])
