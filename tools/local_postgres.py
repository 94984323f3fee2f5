"""The PostgreSQL server that `make run`, `make migrate` and `make test` use (tooling, not pipeline code).

``BIRTHDAY_POSTGRES_URL`` names a server to use: a libpq URL of any database on it, for example
``postgresql://postgres@127.0.0.1:5432/postgres``. Without it, an embedded PostgreSQL 16 (the ``pgserver``
package) is started from Python with its data under ``.local/``, so no system service is needed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql

SERVER_URL_ENV = "BIRTHDAY_POSTGRES_URL"
PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = PROJECT_DIR / ".local"

# Embedded servers started by this process; holding the handles keeps them running until it exits.
_embedded_servers: list[Any] = []


def server_url(data_dir: Path) -> str:
    """URL of the configured server, or of an embedded one kept in ``data_dir`` and started if needed."""
    configured = os.environ.get(SERVER_URL_ENV, "").strip()
    if configured:
        return configured
    import pgserver  # noqa: PLC0415 - only needed when no server is configured

    # pgserver logs every pg_ctl call at INFO, also from its exit handler after pytest closed its streams.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    _embedded_servers.append(server)
    return server.get_uri()


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop processes that died without cleaning up from pgserver's list of the server's users.

    pgserver stops the server when its last user exits, but a user killed by SIGKILL stays on the list
    for ever, and then nobody ever stops the server.
    """
    handles = data_dir / ".handle_pids.json"
    if handles.exists():
        alive = [pid for pid in json.loads(handles.read_text(encoding="utf-8")) if _is_alive(pid)]
        handles.write_text(json.dumps(alive), encoding="utf-8")


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def database_url(url: str, database: str) -> str:
    """``url`` pointing at ``database`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def ensure_database(url: str, database: str) -> str:
    """Create ``database`` on the server of ``url`` unless it exists; return its URL."""
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": database})
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    finally:
        conn.close()
    return database_url(url, database)


def fresh_database(url: str, database: str) -> str:
    """Drop ``database`` on the server of ``url`` if it exists, create it empty and return its URL."""
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    finally:
        conn.close()
    return ensure_database(url, database)


def copy_database(url: str, template: str, database: str) -> str:
    """Replace ``database`` on the server of ``url`` with a copy of ``template``; return its URL.

    Copying a migrated database is much faster than migrating a new one (Airflow's metadata database takes
    about a minute of CPU to migrate). Nobody may be connected to ``template`` meanwhile.
    """
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            cursor.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database),
                                                                            sql.Identifier(template)))
    finally:
        conn.close()
    return database_url(url, database)


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy form of a libpq URL, for Airflow's metadata database."""
    return "postgresql+psycopg2://" + url.split("://", 1)[1]


def airflow_connection(url: str) -> str:
    """The JSON form of an Airflow ``postgres`` connection to ``url`` (for ``AIRFLOW_CONN_<ID>``).

    A Unix-socket server (``?host=/dir``) keeps its directory as the connection's host.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": query["host"][0] if "host" in query else parts.hostname,
            "port": parts.port or 5432,
            "login": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "schema": parts.path.lstrip("/"),
        }
    )
