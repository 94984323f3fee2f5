"""The Birthdays page: delivery at a glance inside the Airflow UI, for those Airflow lets read the pipeline.

An Airflow 3 plugin. It mounts a FastAPI app on the API server under ``/birthdays`` (the page, the JSON API
it reads, described by ``/birthdays/openapi.json``, and Prometheus metrics at ``/birthdays/metrics``) and links
the page into the UI's navigation. The data is personal (who has a birthday when, in which zone), so every
route, the OpenAPI description included, requires what the configured auth manager decides is read access to
the DAG ``birthday_notifications`` (``requires_access_dag``, as Airflow's own API does): without a login the
API answers 401 and the page sends the visitor to Airflow's login; a logged-in user without that access gets
403, and the page says so. There is no Swagger or ReDoc page: FastAPI's load their scripts from a CDN. Links
work under an ``[api] base_url`` with a path.

The figures come from ``birthday_pipeline.operate.report`` over connection ``birthday_db``, through a small pool of
connections per API server process (``birthday_pipeline.db.pool``), named ``birthdays_page`` in
``pg_stat_activity``.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.api_fastapi.app import API_ROOT_PATH
from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Path as PathParameter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from birthday_pipeline.edge.airflow_versions import dag_read_access
from birthday_pipeline.ids import DB_CONN, HOURLY_DAG

log = logging.getLogger(__name__)

BIRTHDAY_DB_CONN_ID = DB_CONN
# Reading anything here is reading this DAG's data.
DAG_ID = HOURLY_DAG
URL_PREFIX = "/birthdays"
PAGE = Path(__file__).with_name("birthdays_page.html")
# Per API server process (each of its workers): the page's requests are short and few at once, and every
# connection held is one the database's max_connections no longer has for the DAGs.
POOL_SIZE = 4
POOL_WAIT_SECONDS = 10.0
APPLICATION_NAME = "birthdays_page"
# users.id and notifications.user_id are bigint: an id outside it names no user (and would be bound as numeric,
# which no index on the id serves).
SMALLEST_ID, LARGEST_ID = -(2**63), 2**63 - 1
# The days /api/day reports on: every day a notification can fall on, with room to spare. Near the ends of
# Python's dates (years 1 and 9999) the UTC bounds of a local day (report.Day.of) do not exist.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2200, 12, 31)
# The most of an unknown zone name a 422 repeats.
ECHOED_ZONE_CHARACTERS = 64

can_read_the_dag = dag_read_access(DAG_ID)

app = FastAPI(
    title="Birthdays",
    version="1.1",
    description="Delivery of birthday-pipeline notifications: counts, lateness, problems and per-user history. "
                f"Every route needs read access to the DAG `{DAG_ID}` as Airflow's auth manager decides it.",
    # Served below behind the same authorization; FastAPI's Swagger and ReDoc pages load scripts from a CDN.
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


def _open_connection() -> Any:
    from birthday_pipeline.db.connections import name_session
    from birthday_pipeline.edge.connections import open_database

    # A new hook for each new connection: a changed birthday_db connection is used from the next one opened.
    conn = open_database(BIRTHDAY_DB_CONN_ID)
    name_session(conn, APPLICATION_NAME)
    return conn


@functools.cache
def _pool() -> Any:
    from birthday_pipeline.db.pool import ConnectionPool

    # Built by the first request a process serves (after the API server forked its workers). Two first
    # requests at once may build two pools; the one not kept has opened nothing.
    return ConnectionPool(_open_connection, POOL_SIZE, POOL_WAIT_SECONDS)


def _database() -> Iterator[Any]:
    from birthday_pipeline.db.pool import PoolExhausted

    pool = _pool()
    try:
        conn = pool.take()
    except PoolExhausted as busy:
        raise HTTPException(status_code=503, detail=str(busy)) from None
    try:
        yield conn
    finally:
        pool.give_back(conn)


def _settings() -> Any:
    from birthday_pipeline.edge.variables import read_settings_in_api_server

    # One lookup of birthday_settings per request, through the same Settings.read as a task.
    return read_settings_in_api_server()


def _zone(name: str) -> Any:
    from birthday_pipeline.rules.timezones import IANA_VERSION, UnknownTimeZoneError, load_zone

    try:
        return load_zone(name)
    except UnknownTimeZoneError:
        shown = name if len(name) <= ECHOED_ZONE_CHARACTERS else name[:ECHOED_ZONE_CHARACTERS] + "…"
        raise HTTPException(status_code=422,
                            detail=f"unknown time zone {shown!r} (tz database {IANA_VERSION} or Rails)") from None


@app.get("/openapi.json", dependencies=[Depends(can_read_the_dag)], include_in_schema=False)
def openapi(request: Request) -> Response:
    """The OpenAPI description of the routes below, with the path they are served under as its server."""
    root = request.scope.get("root_path", "").rstrip("/")
    return JSONResponse({**app.openapi(), "servers": [{"url": root or "/"}]})


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request) -> Response:
    """The page; without a session, Airflow's login (coming back here); without read access, a 403 in words."""
    try:
        user = await get_user(request, None, None)
    except HTTPException:
        back = f"{API_ROOT_PATH}{URL_PREFIX.lstrip('/')}/" + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{API_ROOT_PATH}api/v2/auth/login?next={quote(back, safe='')}", status_code=307)
    try:
        await run_in_threadpool(can_read_the_dag, request, user)
    except HTTPException as refused:
        return HTMLResponse(_refusal(user.get_name()), status_code=refused.status_code)
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


def _refusal(user_name: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Birthdays: no access</title>'
        '<style>:root { color-scheme: light dark; } body { font-family: system-ui, sans-serif; margin: 1.5rem; }'
        '</style></head><body><h1>Birthdays</h1><p id="refusal">You are logged in as '
        f"<strong>{html.escape(user_name)}</strong>, but you may not read the DAG <code>{DAG_ID}</code>, and this "
        "page shows its notifications: who has a birthday or work anniversary when, and in which time zone. "
        "Ask an Airflow admin for read access to that DAG.</p></body></html>"
    )


@app.get("/api/day", dependencies=[Depends(can_read_the_dag)], summary="One day's delivery")
def day(
    day: date | None = Query(None, ge=FIRST_DAY, le=LAST_DAY,
                             description=f"The day, YYYY-MM-DD, in `tz`, from {FIRST_DAY} to {LAST_DAY}; today "
                                         "there by default."),
    tz: str = Query("UTC", description="The IANA time zone the day is taken in, e.g. Europe/Berlin."),
    conn: Any = Depends(_database),
) -> dict[str, Any]:
    """The notifications whose send instant falls in the day (and the invalid ones, which have no instant,
    celebrated that date): counts per occasion and status, lateness of each delivery (seconds), deliveries per
    local hour, and the failed, invalid, expired and cancelled notifications with their reason, attempts, last
    error and task log link."""
    from birthday_pipeline.operate.report import Day, day_report

    zone = _zone(tz)
    return day_report(conn, Day.of(day or datetime.now(zone).date(), zone), _settings(), API_ROOT_PATH)


@app.get("/api/users/{user_id}", dependencies=[Depends(can_read_the_dag)], summary="One user's notifications")
def user(user_id: int = PathParameter(ge=SMALLEST_ID, le=LARGEST_ID, description="The user's id (a bigint)."),
         conn: Any = Depends(_database)) -> dict[str, Any]:
    """The user's next planned send per occasion (UTC and local) and their notifications, newest first."""
    from birthday_pipeline.operate.report import user_report

    found = user_report(conn, user_id, _settings(), datetime.now(UTC), API_ROOT_PATH)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no user {user_id}")
    return found


@app.get("/metrics", dependencies=[Depends(can_read_the_dag)], response_class=PlainTextResponse,
         summary="Prometheus metrics")
def metrics(conn: Any = Depends(_database)) -> Response:
    """Counts per occasion and status of today and yesterday (UTC), today's delivery lateness quantiles, and
    the rows due but not sent with the age of the oldest, in Prometheus' text format, from the database."""
    from birthday_pipeline.operate.prometheus_text import CONTENT_TYPE, exposition
    from birthday_pipeline.operate.report import health

    return Response(exposition(health(conn, _settings())), media_type=CONTENT_TYPE)


class BirthdaysPagePlugin(AirflowPlugin):
    name = "birthdays_page"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Birthdays"}]
    # Relative, so that the UI's frame resolves it against the UI's base URL (``[api] base_url``, path included).
    external_views = [
        {"name": "Birthdays", "href": f"{URL_PREFIX.lstrip('/')}/", "url_route": "birthdays", "destination": "nav"},
    ]
