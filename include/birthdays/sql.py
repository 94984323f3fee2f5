"""The one loader of the SQL statements kept under ``include/sql/``."""

from __future__ import annotations

import functools
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


@functools.cache
def load_sql(name: str) -> str:
    """The text of ``include/sql/<name>.sql``, e.g. ``load_sql("plan/release_batches")``."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
