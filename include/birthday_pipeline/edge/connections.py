"""Database connections from an Airflow connection id, through the postgres provider's hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def open_database(conn_id: str) -> Any:
    return database_connector(conn_id)()


def database_connector(conn_id: str) -> Callable[[], Any]:
    """Opens a new connection to ``conn_id`` on each call, from any thread.

    One hook for all of them: it looks the Airflow connection up once, on the first call (made in the task's
    own thread), and then only opens connections with what it found.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id).get_conn
