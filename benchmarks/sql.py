"""The loader of the benchmarks' own SQL under ``benchmarks/sql/``, and a runner of one such statement."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parent / "sql"


@functools.cache
def load_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def execute(conn: Any, name: str, parameters: dict | None = None) -> None:
    """Run ``benchmarks/sql/<name>.sql`` and commit."""
    with conn.cursor() as cursor:
        cursor.execute(load_sql(name), parameters)
    conn.commit()
