"""The Birthdays page plugin on a real Airflow API server, over real PostgreSQL, rendered in headless Chromium.

One demo day is produced by the pipeline itself (``dag.test()`` of the hourly and sweep DAGs against a real
receiver): birthdays and work anniversaries sent, a bad zone invalid, a message the webhook refused failed,
a message too late expired, a user who opted out cancelled (the users relation is a view with an opt-out column).
The API, the metrics and the page must show exactly those rows.

The API server is served under a base URL with a path (``[api] base_url`` = ``http://127.0.0.1:PORT/airflow``),
with an auth manager that hides the hourly DAG from one user (``tests.auth_manager``): the page and its API
must answer 401 without a login, 403 to that user, and work, links included, for a user who may read it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from prometheus_client.parser import text_string_to_metric_families

from birthday_pipeline.plan.planning import User
from birthday_pipeline.settings import SETTINGS_ENVIRONMENT
from plugins.birthdays_page import APPLICATION_NAME, POOL_SIZE
from tests.auth_manager import HIDDEN_DAGS_ENV
from tests.chromium import Page, headless_chromium
from tests.conftest import WEBHOOK_SECRET, insert_users, settings_text
from tests.real_services import PROJECT_DIR, NoRedirect, get, login, plugin_api_server
from tests.webhook_receiver import Answer, WebhookReceiver

pytestmark = pytest.mark.long(minutes=3)  # real API servers and headless Chromium

SCREENSHOTS = PROJECT_DIR / ".local" / "artifacts"
SENT_BIRTHDAYS = [1, 2, 3, 4, 5, 6]
ANNIVERSARIES = [3, 4]
INVALID_USER, REFUSED_USER, EXPIRED_USER, OPTED_OUT_USER = 7, 8, 9, 10
OPTED_OUT_REASON = "user opted out (no_announcements is true)"
OPERATOR, OUTSIDER, PASSWORD = "operator", "outsider", "birthday-page-test-password"
BASE_PATH = "/airflow"


@dataclasses.dataclass(frozen=True)
class DemoDay:
    """The day the demo happened, its instant, and a zone in which all its rows fall on that day."""

    day: date
    instant: datetime
    zone: str


def etc_zone(hours_east: int) -> str:
    return "UTC" if hours_east == 0 else f"Etc/GMT{'-' if hours_east > 0 else '+'}{abs(hours_east)}"


def hours_east_at_noon(instant: datetime) -> int:
    """The offset at which the local time of ``instant`` is between 12:00 and 13:00."""
    return 12 - instant.hour


def produce_demo_day(db: Any, receiver: WebhookReceiver) -> DemoDay:
    """Run the pipeline over a small cohort; return the day it celebrated and the zone to view it in."""
    from tests.airflow_dagbag import DagBag

    instant = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
    day = instant.date()
    os.environ[SETTINGS_ENVIRONMENT] = settings_text(
        os.environ.get(SETTINGS_ENVIRONMENT), send_local_time=instant.strftime("%H:%M:%S"), max_lateness_hours=2,
        users_relation="page_users", opt_out_column="no_announcements")
    os.environ["AIRFLOW_CONN_BIRTHDAY_WEBHOOK"] = json.dumps(
        {"conn_type": "http", "host": receiver.url, "password": WEBHOOK_SECRET})
    with db.cursor() as cursor:
        cursor.execute("TRUNCATE users, notifications RESTART IDENTITY CASCADE")
        cursor.execute("CREATE OR REPLACE VIEW page_users AS SELECT *, id = %s AS no_announcements FROM users",
                       (OPTED_OUT_USER,))
    db.commit()
    hired = {"hired_on": day.replace(year=2015)}
    insert_users(db, [
        *(User(user_id, day.replace(year=1990), "UTC", "Ada", "Lovelace",
               hired if user_id in ANNIVERSARIES else {}) for user_id in SENT_BIRTHDAYS),
        User(INVALID_USER, day.replace(year=1990), "Mars/Olympus_Mons", "Ada", "Lovelace"),
        User(REFUSED_USER, day.replace(year=1990), "UTC", "Ada", "Lovelace"),
        # At UTC+3 the same local time came three hours ago: beyond the two-hour late window.
        User(EXPIRED_USER, day.replace(year=1990), "Etc/GMT-3", "Ada", "Lovelace"),
        User(OPTED_OUT_USER, day.replace(year=1990), "UTC", "Ada", "Lovelace"),
    ])
    receiver.answer_with(lambda request: Answer(400 if request.json["user_id"] == REFUSED_USER else 200))
    bag = DagBag()
    hourly, sweep = bag.get_dag("birthday_notifications"), bag.get_dag("birthday_sweep")
    for due in (instant - timedelta(hours=3), instant):
        hourly.test(logical_date=due.replace(minute=0, second=0) - timedelta(hours=1))
    assert sweep.test().state == "success"
    # Viewed in a zone where the instant is near noon, the expired row (three hours earlier) is on the same day.
    return DemoDay(day, instant, etc_zone(hours_east_at_noon(instant)))


@pytest.fixture(scope="module")
def demo_day(app_database_url) -> Any:
    saved = {name: os.environ.get(name) for name in (SETTINGS_ENVIRONMENT, "AIRFLOW_CONN_BIRTHDAY_WEBHOOK")}
    conn = psycopg2.connect(app_database_url)
    try:
        with WebhookReceiver() as receiver:
            day = produce_demo_day(conn, receiver)
            yield day, conn, receiver
    finally:
        conn.rollback()
        with conn.cursor() as cursor:
            cursor.execute("DROP VIEW IF EXISTS page_users")
        conn.commit()
        conn.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def api_server(demo_day, tmp_path_factory) -> Any:
    """The Airflow API server with the plugin under a base URL path, on the test session's metadata database, with
    an auth manager that hides birthday_notifications from OUTSIDER; yields that base URL."""
    environment = {
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.auth_manager.DagHidingAuthManager",
        HIDDEN_DAGS_ENV: json.dumps({OUTSIDER: ["birthday_notifications"]}),
    }
    with plugin_api_server(tmp_path_factory.mktemp("api-server"), {OPERATOR: PASSWORD, OUTSIDER: PASSWORD},
                           base_path=BASE_PATH, environment=environment) as url:
        yield url


def get_page(url: str, token: str) -> tuple[int, str]:
    """The page as a browser with the UI's session cookie gets it: status and HTML."""
    request = urllib.request.Request(url, headers={"Cookie": f"_token={token}"})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(scope="module")
def token(api_server) -> str:
    """A session of a user with Airflow's viewer role, from Airflow's own login endpoint: its JWT."""
    return login(api_server, OPERATOR, PASSWORD)


@pytest.fixture(scope="module")
def outsider_token(api_server) -> str:
    return login(api_server, OUTSIDER, PASSWORD)


def day_query(day: date, zone: str) -> str:
    """The query string of ``/api/day``, encoded (the ``+`` of ``Etc/GMT+7`` would otherwise read as a space)."""
    return urllib.parse.urlencode({"day": day.isoformat(), "tz": zone})


def database_rows(conn: Any, day: date) -> dict[str, Any]:
    """The demo's rows: all of them celebrate ``day`` (and fall on it in the demo's viewing zone)."""
    conn.rollback()
    with conn.cursor() as cursor:
        cursor.execute("SELECT occasion, status, count(*) FROM notifications WHERE occasion_date = %s"
                       " GROUP BY 1, 2", (day,))
        counts = {(occasion, status): count for occasion, status, count in cursor.fetchall()}
        cursor.execute("SELECT id FROM notifications WHERE occasion_date = %s AND status = 'sent' ORDER BY id", (day,))
        sent = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT id FROM notifications WHERE occasion_date = %s"
                       " AND status IN ('failed', 'invalid', 'expired', 'cancelled') ORDER BY id", (day,))
        problems = [row[0] for row in cursor.fetchall()]
    conn.rollback()
    return {"counts": counts, "sent": sent, "problems": problems}


@pytest.mark.core
def test_the_demo_day_holds_what_the_pipeline_did(demo_day) -> None:
    demo, conn, receiver = demo_day
    assert database_rows(conn, demo.day)["counts"] == {
        ("birthday", "sent"): 6, ("birthday", "invalid"): 1, ("birthday", "failed"): 1, ("birthday", "expired"): 1,
        ("birthday", "cancelled"): 1, ("work_anniversary", "sent"): 2,
    }
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 9  # 8 sent + 1 refused


PROTECTED = ["/birthdays/api/day", "/birthdays/api/users/1", "/birthdays/metrics", "/birthdays/openapi.json"]


@pytest.mark.core
def test_without_a_login_the_api_answers_401_and_the_page_sends_you_to_the_login(api_server) -> None:
    for path in PROTECTED:
        assert get(f"{api_server}{path}")[0] == 401, path
    assert get(f"{api_server}/birthdays/api/day", token="not-a-token")[0] in (401, 403)
    status, headers = get(f"{api_server}/birthdays/?day=2026-03-10")
    assert status == 307
    login = urllib.parse.urlsplit(headers["location"])
    assert login.path == f"{BASE_PATH}/api/v2/auth/login"
    assert urllib.parse.parse_qs(login.query)["next"] == [f"{BASE_PATH}/birthdays/?day=2026-03-10"]


@pytest.mark.core
def test_a_user_the_auth_manager_denies_the_dag_gets_403_and_the_page_says_why(api_server, outsider_token) -> None:
    # The auth manager lets this user read other DAGs, not the hourly one; the plugin follows its decision.
    assert get(f"{api_server}/api/v2/dags/birthday_sweep", outsider_token)[0] == 200
    assert get(f"{api_server}/api/v2/dags/birthday_notifications", outsider_token)[0] == 403
    for path in PROTECTED:
        assert get(f"{api_server}{path}", outsider_token)[0] == 403, path
    status, body = get_page(f"{api_server}/birthdays/", outsider_token)
    assert status == 403
    assert "You are logged in as <strong>outsider</strong>, but you may not read the DAG" in body
    assert "Ask an Airflow admin for read access to that DAG." in body
    print("403 page for the denied user:", body)


@pytest.mark.core
def test_the_api_is_described_to_readers_only_and_the_page_is_linked_into_the_ui_nav(api_server, token) -> None:
    status, spec = get(f"{api_server}/birthdays/openapi.json", token)
    assert status == 200
    assert set(spec["paths"]) == {"/api/day", "/api/users/{user_id}", "/metrics"}
    assert spec["servers"] == [{"url": f"{BASE_PATH}/birthdays"}]
    # No Swagger or ReDoc page (FastAPI's load scripts from a CDN), and the page loads no script from elsewhere.
    for path in ("/birthdays/docs", "/birthdays/redoc"):
        assert get(f"{api_server}{path}", token)[0] == 404, path
    status, page = get_page(f"{api_server}/birthdays/", token)
    assert status == 200 and "<script>" in page
    assert re.findall(r"<script\b[^>]*\bsrc\s*=", page, re.IGNORECASE) == []
    status, plugins = get(f"{api_server}/api/v2/plugins", token)
    assert status == 200
    (plugin,) = [plugin for plugin in plugins["plugins"] if plugin["name"] == "birthdays_page"]
    # Relative: the UI's frame resolves it against the base URL, /airflow/ here.
    assert [(view["name"], view["href"], view["destination"]) for view in plugin["external_views"]] == [
        ("Birthdays", "birthdays/", "nav")]


@pytest.mark.core
def test_the_day_api_shows_counts_lateness_per_hour_and_the_problems_with_their_task_logs(
        demo_day, api_server, token) -> None:
    demo, conn, _ = demo_day
    status, report = get(f"{api_server}/birthdays/api/day?{day_query(demo.day, demo.zone)}", token)
    assert status == 200
    assert (report["day"], report["timezone"], len(report["hours"])) == (demo.day.isoformat(), demo.zone, 24)
    expected = database_rows(conn, demo.day)
    counts = {(occasion, status): count for occasion, by_status in report["counts"].items()
              for status, count in by_status.items() if count}
    assert counts == expected["counts"]
    assert sorted(point["id"] for point in report["lateness"]) == expected["sent"]
    assert all(0 <= point["lateness_s"] < 600 for point in report["lateness"])
    assert sum(bucket["count"] for bucket in report["sends_per_hour"]) == 8
    assert {bucket["hour"] for bucket in report["sends_per_hour"]} <= set(report["hours"])
    problems = {problem["user_id"]: problem for problem in report["problems"]}
    assert sorted(problem["id"] for problem in report["problems"]) == expected["problems"]
    assert problems[INVALID_USER]["reason"] == 'unknown time zone "Mars/Olympus_Mons"'
    assert problems[EXPIRED_USER]["reason"] == "not sent within 2 hours of its instant"
    assert (problems[OPTED_OUT_USER]["status"], problems[OPTED_OUT_USER]["reason"]) == ("cancelled", OPTED_OUT_REASON)
    refused = problems[REFUSED_USER]
    assert (refused["status"], refused["reason"], refused["attempts"], refused["last_error"]) == (
        "failed", "refused by the webhook; not retried", 1, "HTTP 400")
    # The link names the task instance that made the attempt, under the base URL; its log exists in Airflow.
    path = urllib.parse.urlsplit(refused["task_log"])
    _, base, _, dag_id, _, run_id, _, task_id, _, map_index = path.path.split("/")
    assert (base, dag_id, task_id, urllib.parse.parse_qs(path.query)["try_number"]) == (
        BASE_PATH.strip("/"), "birthday_notifications", "release.send_batch", ["1"])
    status, _ = get(f"{api_server}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1"
                    f"?map_index={map_index}", token)
    assert status == 200


@pytest.mark.core
def test_a_day_in_another_zone_holds_the_instants_of_that_local_day(demo_day, api_server, token) -> None:
    demo, conn, _ = demo_day
    # Twelve or thirteen hours away from the demo's zone, its instants fall on another local date.
    offset = hours_east_at_noon(demo.instant)
    zone = etc_zone(offset + 12 if offset <= 2 else offset - 13)
    local_day = demo.instant.astimezone(ZoneInfo(zone)).date()
    assert local_day != demo.day
    sent = database_rows(conn, demo.day)["sent"]
    status, report = get(f"{api_server}/birthdays/api/day?{day_query(local_day, zone)}", token)
    assert status == 200 and sorted(point["id"] for point in report["lateness"]) == sent
    _, report = get(f"{api_server}/birthdays/api/day?{day_query(demo.day, zone)}", token)
    assert report["lateness"] == [] and report["sends_per_hour"] == []
    # A spring-forward day has 23 local hours; an unknown zone is refused.
    _, spring = get(f"{api_server}/birthdays/api/day?day=2026-03-29&tz=Europe/Berlin", token)
    assert len(spring["hours"]) == 23 and spring["start"] == "2026-03-28T23:00:00+00:00"
    assert get(f"{api_server}/birthdays/api/day?tz=Mars/Olympus_Mons", token)[0] == 422


@pytest.mark.core
def test_the_user_api_shows_the_next_send_in_utc_and_local_time_and_past_notifications(
        demo_day, api_server, token) -> None:
    demo, _, _ = demo_day
    status, report = get(f"{api_server}/birthdays/api/users/3", token)
    assert status == 200
    assert [(n["occasion"], n["occasion_date"], n["status"]) for n in report["notifications"]] == [
        ("birthday", demo.day.isoformat(), "sent"), ("work_anniversary", demo.day.isoformat(), "sent")]
    assert all(n["task_log"].startswith(f"{BASE_PATH}/dags/birthday_notifications/runs/")
               for n in report["notifications"])
    upcoming = {n["occasion"]: n for n in report["next"]}
    assert set(upcoming) == {"birthday", "work_anniversary"}
    for entry in upcoming.values():
        assert datetime.fromisoformat(entry["send_at_utc"]) > datetime.now(UTC)
        assert datetime.fromisoformat(entry["send_at_local"]) == datetime.fromisoformat(entry["send_at_utc"])
        assert entry["zone"] == "UTC"
    assert get(f"{api_server}/birthdays/api/users/4242", token)[0] == 404
    status, opted_out = get(f"{api_server}/birthdays/api/users/{OPTED_OUT_USER}", token)
    assert [(n["occasion"], n["status"], n["last_error"]) for n in opted_out["notifications"]] == [
        ("birthday", "cancelled", OPTED_OUT_REASON)]
    assert [(n["status"], n["reason"]) for n in opted_out["next"]] == [("cancelled", OPTED_OUT_REASON)]


def get_answer(url: str, token: str) -> tuple[int, Any]:
    """GET ``url`` as the holder of ``token``: the status and the JSON body, of an error answer too."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.core
def test_out_of_range_ids_days_and_zones_are_answered_422_and_an_unknown_zone_is_echoed_in_part(
        api_server, token) -> None:
    # Beyond bigint an id names no user; it is refused before it reaches the database.
    for user_id in (2**63, -(2**63) - 1, 10**30):
        status, answer = get_answer(f"{api_server}/birthdays/api/users/{user_id}", token)
        assert status == 422 and answer["detail"][0]["loc"] == ["path", "user_id"], user_id
    for user_id in (2**63 - 1, -(2**63)):
        assert get_answer(f"{api_server}/birthdays/api/users/{user_id}", token) == (
            404, {"detail": f"no user {user_id}"})
    # The last day Python has (9999-12-31) has no end in UTC: it used to answer 500.
    for day, bound in (("9999-12-31", "less than or equal to 2200-12-31"), ("2201-01-01", "2200-12-31"),
                       ("0001-01-01", "greater than or equal to 1900-01-01"), ("1899-12-31", "1900-01-01")):
        status, answer = get_answer(f"{api_server}/birthdays/api/day?day={day}&tz=Etc/GMT-14", token)
        assert status == 422 and bound in answer["detail"][0]["msg"], day
    for day in ("1900-01-01", "2200-12-31"):
        for zone in ("Etc/GMT-14", "Etc/GMT+12"):
            assert get_answer(f"{api_server}/birthdays/api/day?day={day}&tz={quote_zone(zone)}", token)[0] == 200
    status, answer = get_answer(f"{api_server}/birthdays/api/day?tz={'Mars/' + 'x' * 5000}", token)
    assert status == 422
    assert answer["detail"].startswith("unknown time zone 'Mars/" + "x" * 59 + "…' (tz database")
    assert len(answer["detail"]) < 120


def quote_zone(zone: str) -> str:
    return urllib.parse.quote(zone, safe="/")


def page_backends(conn: Any) -> set[int]:
    """The backends of the page's connections (its pool names them), of any API server process."""
    conn.rollback()
    with conn.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APPLICATION_NAME,))
        pids = {row[0] for row in cursor.fetchall()}
    conn.rollback()
    return pids


@pytest.mark.core
def test_the_page_reuses_a_few_connections_and_replaces_those_the_server_ended(demo_day, api_server, token) -> None:
    demo, conn, _ = demo_day
    paths = [f"/birthdays/api/day?{day_query(demo.day, demo.zone)}", "/birthdays/api/users/3", "/birthdays/metrics"]

    def fetch(rounds: int) -> None:
        for _ in range(rounds):
            for path in paths:
                assert get(f"{api_server}{path}", token)[0] == 200, path

    fetch(10)
    first = page_backends(conn)
    assert 1 <= len(first) <= POOL_SIZE
    fetch(10)
    assert page_backends(conn) == first  # 30 more requests, not one connection more
    with ThreadPoolExecutor(12) as requests:
        statuses = list(requests.map(lambda path: get(f"{api_server}{path}", token)[0], paths * 8))
    assert statuses == [200] * len(statuses)
    busiest = page_backends(conn)
    assert first <= busiest and len(busiest) <= POOL_SIZE
    print(f"{len(busiest)} pooled connections served {30 + 30 + len(statuses)} requests")

    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (sorted(busiest),))
    conn.rollback()
    deadline = time.monotonic() + 10
    while page_backends(conn) & busiest:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Every pooled connection is dead: each is found so when taken, and replaced.
    fetch(2)
    replaced = page_backends(conn)
    assert replaced and not replaced & busiest and len(replaced) <= POOL_SIZE


@pytest.mark.core
def test_the_metrics_endpoint_parses_as_prometheus_text_and_counts_what_the_database_holds(
        demo_day, api_server, token) -> None:
    _, conn, _ = demo_day
    request = urllib.request.Request(f"{api_server}/birthdays/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(families) == {"birthday_notifications", "birthday_delivery_lateness_seconds", "birthday_unsent_due",
                             "birthday_oldest_unsent_due_seconds"}
    conn.rollback()
    with conn.cursor() as cursor:
        cursor.execute("SELECT occasion, status, count(*) FROM notifications WHERE (send_at AT TIME ZONE 'UTC')::date"
                       " = (now() AT TIME ZONE 'UTC')::date OR (send_at IS NULL AND occasion_date ="
                       " (now() AT TIME ZONE 'UTC')::date) GROUP BY 1, 2")
        today = {(occasion, status): count for occasion, status, count in cursor.fetchall()}
        cursor.execute("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - send_at)),"
                       " count(*) FROM notifications WHERE status = 'sent'"
                       " AND (send_at AT TIME ZONE 'UTC')::date = (now() AT TIME ZONE 'UTC')::date")
        median, delivered = cursor.fetchone()
    conn.rollback()
    exported = {(sample.labels["occasion"], sample.labels["status"]): sample.value
                for sample in families["birthday_notifications"].samples
                if sample.labels["day"] == "today" and sample.value}
    assert exported == today
    lateness = {sample.labels.get("quantile", sample.name): sample.value
                for sample in families["birthday_delivery_lateness_seconds"].samples}
    assert lateness["0.5"] == pytest.approx(median)
    assert lateness["birthday_delivery_lateness_seconds_count"] == delivered
    # The refused row is failed for good and the expired row expired: nothing is due and unsent.
    assert [sample.value for sample in families["birthday_unsent_due"].samples] == [0]
    assert [sample.value for sample in families["birthday_oldest_unsent_due_seconds"].samples] == [0]
    print(text)


def open_in_airflow_ui(page: Page, api_server: str, token: str, theme: str, zone: str) -> None:
    """Log in (the ``_token`` cookie the UI keeps), choose the UI's colour mode as its theme menu stores it,
    and open the Birthdays entry of the UI's navigation, with the browser in ``zone``."""
    page.call("Network.setCookie", name="_token", value=token, url=f"{api_server}/", path=f"{BASE_PATH}/",
              httpOnly=True)
    page.call("Emulation.setTimezoneOverride", timezoneId=zone)
    page.navigate(f"{api_server}/birthdays/openapi.json")
    page.wait_for("document.readyState === 'complete'")
    page.evaluate(f"localStorage.setItem('theme', '{theme}')")
    page.navigate(f"{api_server}/plugin/birthdays")
    page.wait_for("(() => { const frame = document.querySelector('iframe[title=\"Birthdays\"]');"
                  " const body = frame && frame.contentDocument && frame.contentDocument.body;"
                  " return body && ['ready', 'error', 'refused'].includes(body.dataset.state); })()", timeout=90)


FRAME = "document.querySelector('iframe[title=\"Birthdays\"]').contentDocument"


def luminance(css_color: str) -> float:
    red, green, blue = (float(part) for part in re.findall(r"[\d.]+", css_color)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def test_the_page_in_the_airflow_ui_shows_the_real_rows_in_both_themes(demo_day, api_server, token) -> None:
    demo, conn, _ = demo_day
    expected = database_rows(conn, demo.day)
    seen_by_theme = {}
    with headless_chromium() as page:
        for theme in ("light", "dark"):
            open_in_airflow_ui(page, api_server, token, theme, demo.zone)
            state = page.evaluate(f"{FRAME}.body.dataset.state")
            assert state == "ready", page.evaluate(f"{FRAME}.getElementById('message').textContent")
            page.evaluate(f"(() => {{ const doc = {FRAME}; doc.getElementById('user-id').value = '3';"
                          " doc.querySelector('#user-form button').click(); })()")
            page.wait_for(f"{FRAME}.querySelectorAll('#user-notifications tbody tr').length === 2")
            seen_by_theme[theme] = page.evaluate(f"""(() => {{ const doc = {FRAME}; return {{
                uiTheme: document.documentElement.className,
                pageTheme: doc.documentElement.dataset.theme,
                background: getComputedStyle(doc.body).backgroundColor,
                text: getComputedStyle(doc.body).color,
                zone: doc.getElementById('tz').value, day: doc.getElementById('day').value,
                counts: [...doc.querySelectorAll('#counts tbody tr')].map(tr =>
                    [tr.dataset.occasion, [...tr.cells].map(td => td.textContent)]),
                header: [...doc.querySelectorAll('#counts thead th')].map(th => th.textContent),
                points: [...doc.querySelectorAll('#lateness-plot circle.lateness-point')].map(c => +c.dataset.id),
                bars: [...doc.querySelectorAll('#sends-per-hour rect.hour-bar')].map(r => +r.dataset.count),
                yTicks: [...doc.querySelectorAll('#lateness-plot .y-tick')].map(t => t.textContent),
                xTicks: [...doc.querySelectorAll('#sends-per-hour .x-tick')].map(t => t.textContent),
                titles: [...doc.querySelectorAll('svg .axis-title')].map(t => t.textContent),
                problems: [...doc.querySelectorAll('#problems tbody tr')].map(tr =>
                    [...tr.cells].map(td => td.textContent)),
                logLinks: [...doc.querySelectorAll('#problems a.task-log')].map(a => a.href),
            }}; }})()""")
            page.screenshot(SCREENSHOTS / f"birthdays-page-{theme}.png", height=1400)
        # The page follows a change of the UI's mode while it is open (the UI's theme menu sets this class).
        page.evaluate("document.documentElement.classList.replace('dark', 'light')")
        assert page.wait_for(f"{FRAME}.documentElement.dataset.theme === 'light'", timeout=10)

    light, dark = seen_by_theme["light"], seen_by_theme["dark"]
    assert (light["uiTheme"], light["pageTheme"]) == ("light", "light")
    assert (dark["uiTheme"], dark["pageTheme"]) == ("dark", "dark")
    assert luminance(light["background"]) > 0.9 and luminance(light["text"]) < 0.2
    assert luminance(dark["background"]) < 0.1 and luminance(dark["text"]) > 0.9
    for seen in (light, dark):
        # The browser's zone is the default, and today there is the demo's day.
        assert (seen["zone"], seen["day"]) == (demo.zone, demo.day.isoformat())
        header = seen["header"]
        shown = {(occasion, header[index]): int(cell) for occasion, cells in seen["counts"]
                 for index, cell in enumerate(cells) if 0 < index < len(header) - 1 and int(cell)}
        assert shown == expected["counts"]
        assert sorted(seen["points"]) == expected["sent"]
        assert sum(seen["bars"]) == len(expected["sent"])
        assert seen["yTicks"][0] == "0 s" and all(tick.endswith(" s") for tick in seen["yTicks"])
        assert seen["xTicks"] == ["00:00", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "24:00"]
        assert seen["titles"] == [f"send instant (local time, {demo.zone})", "lateness (s)",
                                  f"hour of sending (local time, {demo.zone})", "sends per hour"]
        assert sorted(int(cells[0]) for cells in seen["problems"]) == expected["problems"]
        assert any(cells[7] == "HTTP 400" and cells[5] == "refused by the webhook; not retried"
                   for cells in seen["problems"])
        (link,) = seen["logLinks"]
        assert urllib.parse.urlsplit(link).path.startswith(f"{BASE_PATH}/dags/birthday_notifications/runs/")
    for theme in ("light", "dark"):
        assert (SCREENSHOTS / f"birthdays-page-{theme}.png").stat().st_size > 10_000
    print(f"demo day {demo.day} in {demo.zone}: {sorted(expected['counts'].items())}; screenshots in {SCREENSHOTS}")
