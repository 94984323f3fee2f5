"""What every benchmark phase measures with: a timer, a nearest-rank percentile and the VACUUM ANALYZE after a bulk
load."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from psycopg2 import sql


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (with 5 batches, the 99th is the latest batch)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def checkpoint(conn: Any) -> None:
    """Write out what a bulk load left dirty, so that the checkpointer flushing gigabytes in the background
    does not slow whatever is measured next (superuser or pg_checkpoint, as the benchmark's servers give)."""
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    finally:
        conn.autocommit = False


def vacuum_analyze(conn: Any, table: str) -> None:
    """Fresh statistics and a set visibility map after a bulk load, as autovacuum would leave them."""
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    finally:
        conn.autocommit = False
