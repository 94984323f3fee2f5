"""The Birthdays page: delivery at a glance inside the Airflow UI, behind Airflow's own login.

An Airflow 3 plugin. It mounts a FastAPI app on the API server under ``/birthdays`` (the page, and the JSON
API it reads, documented at ``/birthdays/docs`` and ``/birthdays/openapi.json``) and links the page into the
UI's navigation. Every route requires a logged-in Airflow user (the API server's JWT, as a bearer token or
the UI's session cookie); the page itself sends a visitor without a session to Airflow's login.

The figures come from ``birthday_pipeline.report`` over connection ``birthday_db``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.api_fastapi.core_api.security import get_user, resolve_user_from_token
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

log = logging.getLogger(__name__)

BIRTHDAY_DB_CONN_ID = "birthday_db"
URL_PREFIX = "/birthdays"
PAGE = Path(__file__).with_name("birthdays_page.html")
AUTH_COOKIE = "_token"

app = FastAPI(
    title="Birthdays",
    version="1.0",
    description="Delivery of birthday-pipeline notifications: counts, lateness, problems and per-user history.",
)


def _database() -> Iterator[Any]:
    from birthday_pipeline.runtime import open_database

    with closing(open_database(BIRTHDAY_DB_CONN_ID)) as conn:
        yield conn


def _settings() -> Any:
    from airflow.models import Variable

    from birthday_pipeline.settings import Settings

    # One lookup per request, as in a task (Settings.read). The API server runs no Task SDK supervisor, so
    # Airflow's own Variable model reads the secrets backends and the metadata database here.
    return Settings.read(lambda name: Variable.get(name, default_var=None))


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request) -> Response:
    """The page; without a session, Airflow's login, coming back here afterwards."""
    try:
        await resolve_user_from_token(request.cookies.get(AUTH_COOKIE))
    except HTTPException:
        return RedirectResponse(f"/api/v2/auth/login?next={quote(URL_PREFIX + '/', safe='')}", status_code=307)
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@app.get("/api/day", dependencies=[Depends(get_user)], summary="One day's delivery")
def day(
    day: date | None = Query(None, description="The celebrated local date, YYYY-MM-DD; today (UTC) by default."),
    conn: Any = Depends(_database),
) -> dict[str, Any]:
    """Counts per occasion and status, lateness of each delivery (seconds), deliveries per UTC hour, and the
    failed, invalid and expired notifications with their reason, attempts, last error and task log link."""
    from birthday_pipeline.report import day_report

    return day_report(conn, day or datetime.now(UTC).date())


@app.get("/api/users/{user_id}", dependencies=[Depends(get_user)], summary="One user's notifications")
def user(user_id: int, conn: Any = Depends(_database)) -> dict[str, Any]:
    """The user's next planned send per occasion (UTC and local) and their notifications, newest first."""
    from birthday_pipeline.report import user_report

    found = user_report(conn, user_id, _settings(), datetime.now(UTC))
    if found is None:
        raise HTTPException(status_code=404, detail=f"no user {user_id}")
    return found


class BirthdaysPagePlugin(AirflowPlugin):
    name = "birthdays_page"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Birthdays"}]
    external_views = [
        {"name": "Birthdays", "href": f"{URL_PREFIX}/", "url_route": "birthdays", "destination": "nav"},
    ]
