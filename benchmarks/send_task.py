"""One send task in its own process, so its peak memory and its throughput are its own.

    python -m benchmarks.send_task pipeline|bare BATCH_JSON IN_FLIGHT [together]

``pipeline`` runs the body of the DAG's ``send_batch`` task (``sending.send_batch``: claim and prepare before the
batch's instant, re-read the rows just before it, HTTP through the provider's hook, attempt rows, status updates,
lease heartbeat) on connections ``birthday_db`` and ``birthday_webhook`` from the environment; its figures count
from the batch's instant (``send_at``, in the future when it starts), as a user sees them, except ``task_s``, the
whole task (what one worker slot spends on the batch). ``bare`` is the
reference: the same signed bodies for the same rows, built before the clock starts, posted by a plain aiohttp
client with IN_FLIGHT workers and nothing recorded, at once or, ``together`` with other bare clients, from the
moment (a Unix time) read from stdin once it has printed ``READY``. Prints one line ``BENCH {json}`` with the rows
sent, the seconds, the CPU seconds they took and the peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from contextlib import closing
from datetime import datetime

import aiohttp

from benchmarks.sql import load_sql
from birthday_pipeline.ids import DB_CONN, WEBHOOK_CONN

DB_CONN_ID = DB_CONN
WEBHOOK_CONN_ID = WEBHOOK_CONN


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_pipeline(batch: dict) -> dict:
    # A task process has Airflow and the providers loaded before its task body starts: so here, off the clock.
    import airflow.providers.http.hooks.http  # noqa: F401
    import airflow.providers.postgres.hooks.postgres  # noqa: F401
    import airflow.sdk  # noqa: F401

    from birthday_pipeline.deliver import delivery
    from birthday_pipeline.edge import sending

    # Where the time goes, on the wall clock: before the instant the claim and the preparation, which end with the
    # second look at the rows (delivery.look_again); from the instant the HTTP part (delivery.send_all; outcomes
    # are recorded meanwhile), after it the last flush of the recorder and the end of the lease.
    instant = datetime.fromisoformat(batch["send_at"]).timestamp()
    marks: dict[str, float] = {}
    send_all, look_again = delivery.send_all, delivery.look_again

    def timed_look_again(*arguments: object, **keywords: object) -> object:
        try:
            return look_again(*arguments, **keywords)  # type: ignore[arg-type]
        finally:
            marks["looked_again"] = time.time()

    async def timed_send_all(*arguments: object, **keywords: object) -> object:
        marks["cpu_at_instant"] = time.process_time()
        try:
            return await send_all(*arguments, **keywords)  # type: ignore[arg-type]
        finally:
            marks["send_finished"] = time.time()

    delivery.send_all, delivery.look_again = timed_send_all, timed_look_again  # type: ignore[assignment]
    started = time.time()
    outcome = sending.send_batch(batch, DB_CONN_ID, WEBHOOK_CONN_ID, from_sweep=False)
    finished = time.time()
    return {"sent": outcome["sent"], "seconds": finished - instant, "task_s": finished - started,
            "ready_s": instant - marks["looked_again"],
            "http_s": marks["send_finished"] - instant, "record_s": finished - marks["send_finished"],
            "cpu_s": time.process_time() - marks["cpu_at_instant"], "finished_at": finished}


def run_bare(batch: dict, in_flight: int, together: bool = False) -> dict:
    from airflow.providers.http.hooks.http import HttpAsyncHook

    from birthday_pipeline.deliver.messages import Renderer
    from birthday_pipeline.deliver.webhooks import request_headers
    from birthday_pipeline.edge.connections import open_database
    from birthday_pipeline.rules.occasions import BIRTHDAY
    from birthday_pipeline.settings import Settings

    connection = HttpAsyncHook.get_connection(WEBHOOK_CONN_ID)
    with closing(open_database(DB_CONN_ID)) as conn, conn.cursor() as cursor:
        cursor.execute(load_sql("batch_bodies"), batch)
        rows = cursor.fetchall()
    now = int(time.time())
    requests = []
    renderer = Renderer(Settings())
    for notification_id, user_id, first_name, last_name, occasion_date, webhook_id in rows:
        body = renderer.body(notification_id, user_id, first_name, last_name, BIRTHDAY.name, occasion_date, None,
                             None, str(webhook_id))
        requests.append((body, request_headers(str(webhook_id), now, body, connection.password or None)))

    async def post_all() -> int:
        pending = iter(requests)
        ok = 0

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal ok
            for body, headers in pending:
                async with session.post(str(connection.host), data=body, headers=headers) as response:
                    await response.read()
                    ok += response.status == 200

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
            await asyncio.gather(*(worker(session) for _ in range(in_flight)))
        return ok

    if together:
        print("READY", flush=True)
        time.sleep(max(0.0, float(sys.stdin.readline()) - time.time()))
    started, cpu_started = time.time(), time.process_time()
    sent = asyncio.run(post_all())
    finished = time.time()
    return {"sent": sent, "seconds": finished - started, "cpu_s": time.process_time() - cpu_started,
            "finished_at": finished}


def main(mode: str, batch_json: str, in_flight: str, *options: str) -> None:
    batch = json.loads(batch_json)
    figures = run_pipeline(batch) if mode == "pipeline" else run_bare(batch, int(in_flight), "together" in options)
    print("BENCH " + json.dumps({**figures, "peak_rss_mb": peak_rss_mb(), "pid": os.getpid()}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
