"""The Birthdays page plugin on a real Airflow API server, over real PostgreSQL, rendered in headless Chromium.

One demo day is produced by the pipeline itself (``dag.test()`` of the hourly and sweep DAGs against a real
receiver): birthdays and work anniversaries sent, a bad zone invalid, a message the webhook refused failed,
a message too late expired. The API and the page must show exactly those rows.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from birthday_pipeline.planning import User
from tests.chromium import headless_chromium
from tests.conftest import WEBHOOK_SECRET, insert_users
from tests.real_services import PROJECT_DIR, get, login, plugin_api_server
from tests.webhook_receiver import Answer, WebhookReceiver

SCREENSHOT = PROJECT_DIR / ".local" / "artifacts" / "birthdays-page.png"
SENT_BIRTHDAYS = [1, 2, 3, 4, 5, 6]
ANNIVERSARIES = [3, 4]
INVALID_USER, REFUSED_USER, EXPIRED_USER = 7, 8, 9
OPERATOR, OPERATOR_PASSWORD = "operator", "birthday-page-test-password"


def produce_demo_day(db: Any, receiver: WebhookReceiver) -> date:
    """Run the pipeline over a small cohort; return the day it celebrated."""
    from airflow.dag_processing.dagbag import DagBag

    instant = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
    day = instant.date()
    os.environ["AIRFLOW_VAR_BIRTHDAY_SEND_LOCAL_TIME"] = instant.strftime("%H:%M:%S")
    os.environ["AIRFLOW_VAR_BIRTHDAY_MAX_LATENESS_HOURS"] = "2"
    os.environ["AIRFLOW_CONN_BIRTHDAY_WEBHOOK"] = json.dumps(
        {"conn_type": "http", "host": receiver.url, "password": WEBHOOK_SECRET})
    with db.cursor() as cursor:
        cursor.execute("TRUNCATE users, notifications RESTART IDENTITY CASCADE")
    db.commit()
    hired = {"hired_on": day.replace(year=2015)}
    insert_users(db, [
        *(User(user_id, day.replace(year=1990), "UTC", "Ada", "Lovelace",
               hired if user_id in ANNIVERSARIES else {}) for user_id in SENT_BIRTHDAYS),
        User(INVALID_USER, day.replace(year=1990), "Mars/Olympus_Mons", "Ada", "Lovelace"),
        User(REFUSED_USER, day.replace(year=1990), "UTC", "Ada", "Lovelace"),
        # At UTC+3 the same local time came three hours ago: beyond the two-hour late window.
        User(EXPIRED_USER, day.replace(year=1990), "Etc/GMT-3", "Ada", "Lovelace"),
    ])
    receiver.answer_with(lambda request: Answer(410 if request.json["user_id"] == REFUSED_USER else 200))
    bag = DagBag()
    hourly, sweep = bag.get_dag("birthday_notifications"), bag.get_dag("birthday_sweep")
    for due in (instant - timedelta(hours=3), instant):
        hourly.test(logical_date=due.replace(minute=0, second=0) - timedelta(hours=1))
    assert sweep.test().state == "success"
    return day


@pytest.fixture(scope="module")
def demo_day(app_database_url) -> Any:
    saved = {name: os.environ.get(name) for name in (
        "AIRFLOW_VAR_BIRTHDAY_SEND_LOCAL_TIME", "AIRFLOW_VAR_BIRTHDAY_MAX_LATENESS_HOURS",
        "AIRFLOW_CONN_BIRTHDAY_WEBHOOK")}
    conn = psycopg2.connect(app_database_url)
    try:
        with WebhookReceiver() as receiver:
            day = produce_demo_day(conn, receiver)
            yield day, conn, receiver
    finally:
        conn.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def api_server(demo_day, tmp_path_factory) -> Any:
    """The Airflow API server with the plugin, on the test session's metadata database; yields its URL."""
    with plugin_api_server(tmp_path_factory.mktemp("api-server"), {OPERATOR: OPERATOR_PASSWORD}) as url:
        yield url


@pytest.fixture(scope="module")
def token(api_server) -> str:
    """A session of a user with Airflow's viewer role, logged in through Airflow's own login endpoint."""
    return login(api_server, OPERATOR, OPERATOR_PASSWORD)


def database_rows(conn: Any, day: date) -> dict[str, Any]:
    conn.rollback()
    with conn.cursor() as cursor:
        cursor.execute("SELECT occasion, status, count(*) FROM notifications WHERE occasion_date = %s"
                       " GROUP BY 1, 2", (day,))
        counts = {(occasion, status): count for occasion, status, count in cursor.fetchall()}
        cursor.execute("SELECT id FROM notifications WHERE occasion_date = %s AND status = 'sent' ORDER BY id", (day,))
        sent = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT id FROM notifications WHERE occasion_date = %s"
                       " AND status IN ('failed', 'invalid', 'expired') ORDER BY id", (day,))
        problems = [row[0] for row in cursor.fetchall()]
    conn.rollback()
    return {"counts": counts, "sent": sent, "problems": problems}


def test_the_demo_day_holds_what_the_pipeline_did(demo_day) -> None:
    day, conn, receiver = demo_day
    assert database_rows(conn, day)["counts"] == {
        ("birthday", "sent"): 6, ("birthday", "invalid"): 1, ("birthday", "failed"): 1, ("birthday", "expired"): 1,
        ("work_anniversary", "sent"): 2,
    }
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 9  # 8 sent + 1 refused


def test_everything_requires_an_airflow_login(api_server) -> None:
    assert get(f"{api_server}/birthdays/api/day")[0] == 401
    assert get(f"{api_server}/birthdays/api/users/1")[0] == 401
    assert get(f"{api_server}/birthdays/api/day", token="not-a-token")[0] in (401, 403)
    status, headers = get(f"{api_server}/birthdays/")
    assert status == 307 and headers["location"].startswith("/api/v2/auth/login?next=")


def test_the_api_is_documented_and_the_page_is_linked_into_the_ui_nav(api_server, token) -> None:
    status, spec = get(f"{api_server}/birthdays/openapi.json")
    assert status == 200
    assert {"/api/day", "/api/users/{user_id}"} <= set(spec["paths"])
    status, plugins = get(f"{api_server}/api/v2/plugins", token)
    assert status == 200
    (plugin,) = [plugin for plugin in plugins["plugins"] if plugin["name"] == "birthdays_page"]
    assert [(view["name"], view["href"], view["destination"]) for view in plugin["external_views"]] == [
        ("Birthdays", "/birthdays/", "nav")]


def test_the_day_api_shows_counts_lateness_per_hour_and_the_problems_with_their_task_logs(
        demo_day, api_server, token) -> None:
    day, conn, _ = demo_day
    status, report = get(f"{api_server}/birthdays/api/day?day={day.isoformat()}", token)
    assert status == 200
    expected = database_rows(conn, day)
    counts = {(occasion, status): count for occasion, by_status in report["counts"].items()
              for status, count in by_status.items() if count}
    assert counts == expected["counts"]
    assert sorted(point["id"] for point in report["lateness"]) == expected["sent"]
    assert all(0 <= point["lateness_s"] < 600 for point in report["lateness"])
    assert sum(bucket["count"] for bucket in report["sends_per_hour"]) == 8
    problems = {problem["user_id"]: problem for problem in report["problems"]}
    assert sorted(problem["id"] for problem in report["problems"]) == expected["problems"]
    assert problems[INVALID_USER]["reason"] == 'unknown time zone "Mars/Olympus_Mons"'
    assert problems[EXPIRED_USER]["reason"] == "not sent within 2 hours of its instant"
    refused = problems[REFUSED_USER]
    assert (refused["status"], refused["reason"], refused["attempts"], refused["last_error"]) == (
        "failed", "refused by the webhook; not retried", 1, "HTTP 410")
    # The link names the task instance that made the attempt; its log exists in Airflow.
    path = urllib.parse.urlsplit(refused["task_log"])
    _, _, dag_id, _, run_id, _, task_id, _, map_index = path.path.split("/")
    assert (dag_id, task_id, urllib.parse.parse_qs(path.query)["try_number"]) == (
        "birthday_notifications", "release.send_batch", ["1"])
    status, _ = get(f"{api_server}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1"
                    f"?map_index={map_index}", token)
    assert status == 200


def test_the_user_api_shows_the_next_send_in_utc_and_local_time_and_past_notifications(
        demo_day, api_server, token) -> None:
    day, _, _ = demo_day
    status, report = get(f"{api_server}/birthdays/api/users/3", token)
    assert status == 200
    assert [(n["occasion"], n["occasion_date"], n["status"]) for n in report["notifications"]] == [
        ("birthday", day.isoformat(), "sent"), ("work_anniversary", day.isoformat(), "sent")]
    assert all(n["task_log"].startswith("/dags/birthday_notifications/runs/") for n in report["notifications"])
    upcoming = {n["occasion"]: n for n in report["next"]}
    assert set(upcoming) == {"birthday", "work_anniversary"}
    for entry in upcoming.values():
        assert datetime.fromisoformat(entry["send_at_utc"]) > datetime.now(UTC)
        assert datetime.fromisoformat(entry["send_at_local"]) == datetime.fromisoformat(entry["send_at_utc"])
        assert entry["zone"] == "UTC"
    assert get(f"{api_server}/birthdays/api/users/4242", token)[0] == 404


def test_the_page_renders_the_real_rows_in_headless_chromium(demo_day, api_server, token) -> None:
    day, conn, _ = demo_day
    expected = database_rows(conn, day)
    page_path = f"/birthdays/?day={day.isoformat()}&user=3"
    with headless_chromium() as page:
        # The session cookie the Airflow UI keeps after login (``_token``), holding the logged-in user's JWT.
        page.call("Network.setCookie", name="_token", value=token, url=api_server, httpOnly=True)
        page.navigate(f"{api_server}{page_path}")
        state = page.wait_for("document.body && ['ready', 'error'].includes(document.body.dataset.state)"
                              " && document.body.dataset.state")
        assert state == "ready", page.evaluate("document.getElementById('message').textContent")
        seen = page.evaluate("""({
            counts: [...document.querySelectorAll('#counts tbody tr')].map(tr =>
                [tr.dataset.occasion, [...tr.cells].map(td => td.textContent)]),
            header: [...document.querySelectorAll('#counts thead th')].map(th => th.textContent),
            points: [...document.querySelectorAll('#lateness-plot circle.lateness-point')].map(c => +c.dataset.id),
            bars: [...document.querySelectorAll('#sends-per-hour rect.hour-bar')].map(r => +r.dataset.count),
            problems: [...document.querySelectorAll('#problems tbody tr')].map(tr =>
                [...tr.cells].map(td => td.textContent)),
            logLinks: [...document.querySelectorAll('#problems a.task-log')].map(a => a.getAttribute('href')),
            userRows: document.querySelectorAll('#user-notifications tbody tr').length,
        })""")
        page.screenshot(SCREENSHOT)

    header = seen["header"]
    shown = {(occasion, header[index]): int(cell) for occasion, cells in seen["counts"]
             for index, cell in enumerate(cells) if 0 < index < len(header) - 1 and int(cell)}
    assert shown == expected["counts"]
    assert sorted(seen["points"]) == expected["sent"]
    assert sum(seen["bars"]) == len(expected["sent"])
    assert sorted(int(cells[0]) for cells in seen["problems"]) == expected["problems"]
    assert ["failed", "invalid", "expired"] == sorted({cells[3] for cells in seen["problems"]},
                                                      key=["failed", "invalid", "expired"].index)
    assert any(cells[6] == "HTTP 410" and cells[4] == "refused by the webhook; not retried"
               for cells in seen["problems"])
    assert len(seen["logLinks"]) == 1 and seen["logLinks"][0].startswith("/dags/birthday_notifications/runs/")
    assert seen["userRows"] == 2
    assert SCREENSHOT.stat().st_size > 10_000
    print(f"demo day {day}: {sorted(expected['counts'].items())}; screenshot {SCREENSHOT}")
