"""A year in production: the recurring queries measured with and without a year of notification history.

The history is generated, not recorded: for every user, the notification of their last birthday before the
measured moment (one per user and occasion over the past 365 days), with a realistic outcome drawn from
the user's id (so the same users give the same history on every machine) and its attempt rows:

- 99.1 % ``sent`` after one attempt answered 200 (0.15 to 0.9 s late);
- 0.4 % refused by the webhook (one attempt, HTTP 400) and 0.3 % unreachable (three timed-out attempts):
  ``failed`` while inside the late window, ``expired`` after it, as the sweep leaves them;
- 0.2 % ``cancelled`` (the birthday changed after planning), no attempt;
- every user with an unknown zone ``invalid``, with planning's reason and no instant.

Rows are loaded with ``COPY`` one birth month-day at a time, oldest first, so the table is laid out by date
as a year of production writes it, then ``VACUUM ANALYZE``d and checkpointed (what the load
left dirty is written out before anything is timed). Triggers are off for the load (the rows are
consistent by construction; checking ten million foreign keys one by one would only slow the load).

The moment measured is the start of the busiest planning hour. *Without history* the tables hold only the
rows of the late window before it (the day's work); *with history* they hold the whole year. In both states
the same paths are timed: planning the busiest hour, a sweep run's ``find_due`` and ``summarize``, the
hourly ``summarize``, and the Birthdays page API through the real FastAPI app on an Airflow API server
(``/api/day`` for yesterday, ``/api/users/{id}`` for a seeded sample of users), p95 over
``PAGE_REQUESTS`` requests each, with a JWT of the simple auth manager's admin user.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2

from benchmarks.measure import checkpoint, percentile, timed, vacuum_analyze
from benchmarks.sql import execute
from birthday_pipeline.ids import HOURLY_DAG, RELEASE_GROUP, SEND_BATCH_TASK
from birthday_pipeline.operate.report import window_counts
from birthday_pipeline.plan.planning import hourly_window, planning_zone, plan_window, unknown_zone_reason
from birthday_pipeline.plan.sweep import late_window, sweep_late_window
from birthday_pipeline.rules.calendar import celebrated_date, local_instant
from birthday_pipeline.rules.timezones import zone_names
from birthday_pipeline.settings import Settings
from tools import local_postgres

PAGE_DATABASE = "airflow_bench_page"
PAGE_REQUESTS = 40
PAGE_WARM_UP = 5
DB_REPEATS = 21
PLAN_REPEATS = 5
ADMIN, ADMIN_PASSWORD = "admin", "birthday-bench-admin"
RECEIVER_LATENCY = timedelta(milliseconds=100)
# Lateness of a delivery: one of these steps, by user id (0.15 s to 0.9 s).
LATENESS_STEPS = [timedelta(milliseconds=150 + 50 * step) for step in range(16)]
RETRY_GAPS = [timedelta(0), timedelta(minutes=1), timedelta(minutes=5)]
TASK = (HOURLY_DAG, f"{RELEASE_GROUP}.{SEND_BATCH_TASK}")

NOTIFICATION_COLUMNS = ("user_id, occasion, occasion_date, send_at, status, attempts, last_error, sent_at, "
                        "webhook_id, retry_after, created_at, updated_at")
ATTEMPT_COLUMNS = ("notification_id, attempt_number, claim_token, started_at, finished_at, http_status, error, "
                   "latency_ms, dag_id, run_id, task_id, map_index, try_number")
USERS_BORN_ON = ("COPY (SELECT id, birthday, timezone FROM users WHERE (extract(month FROM birthday) * 100"
                 " + extract(day FROM birthday))::integer = %(month_day)s ORDER BY id) TO STDOUT")
NULL = r"\N"


# --- the generator -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Occasion:
    """The last birthday before the moment of the users born on one month-day in one zone, as COPY text."""

    day: str
    send_at: datetime | None  # None: invalid (unknown zone)
    reason: str | None
    recent: bool  # inside the late window before the moment: the day's work, there in both states
    # For each lateness step: the attempt's start and end (the end is also sent_at).
    deliveries: tuple[tuple[str, str], ...]
    run_id: str
    created: str  # planned an hour before the instant


class HistoryGenerator:
    """Tab-separated ``notifications`` and ``notification_attempts`` rows, ids assigned in COPY order."""

    def __init__(self, moment: datetime, settings: Settings) -> None:
        self.moment = moment
        self.settings = settings
        self.late_from = late_window(moment, settings).start
        self.expired_reason = f"not sent within {settings.max_lateness_hours} hours of its instant"
        self.next_id = 1
        self._zones = zone_names()
        self._occasions: dict[tuple[int, str], Occasion] = {}

    def occasion(self, month_day: int, zone: str) -> Occasion:
        key = (month_day, zone)
        if key not in self._occasions:
            self._occasions[key] = self._last_occasion(month_day, zone)
        return self._occasions[key]

    def _last_occasion(self, month_day: int, zone: str) -> Occasion:
        birthday = date(2000, month_day // 100, month_day % 100)  # a leap year: 29 February exists
        known = zone == NULL or zone in self._zones
        plan_zone = planning_zone(zone if known and zone != NULL else None, self.settings)
        for year in (self.moment.year, self.moment.year - 1):
            day = celebrated_date(birthday, year, self.settings.feb29_rule)
            instant = local_instant(day, self.settings.send_local_time, plan_zone)
            if instant < self.moment:
                break
        deliveries = tuple(((instant + step - RECEIVER_LATENCY).isoformat(), (instant + step).isoformat())
                           for step in LATENESS_STEPS)
        run_hour = (instant - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        return Occasion(day.isoformat(), instant if known else None, None if known else unknown_zone_reason(zone),
                        instant >= self.late_from, deliveries, f"scheduled__{run_hour.isoformat()}",
                        (instant - timedelta(hours=1)).isoformat())

    def rows(self, users: list[tuple[int, int, str]], recent_only: bool) -> tuple[str, str]:
        """The rows of ``users`` (id, birth month-day, zone or ``\\N``): notification text, attempt text."""
        notifications: list[str] = []
        attempts: list[str] = []
        for user_id, month_day, zone in users:
            occasion = self.occasion(month_day, zone)
            if recent_only and not occasion.recent:
                continue
            notifications.append(self._notification(self.next_id, user_id, occasion, attempts))
            self.next_id += 1
        return "".join(notifications), "".join(attempts)

    def _notification(self, notification_id: int, user_id: int, occasion: Occasion, attempts: list[str]) -> str:
        webhook_id = _uuid(notification_id)
        head = f"{user_id}\tbirthday\t{occasion.day}\t"
        if occasion.send_at is None:
            return (f"{head}{NULL}\tinvalid\t0\t{occasion.reason}\t{NULL}\t{webhook_id}\t{NULL}\t{occasion.created}\t"
                    f"{occasion.created}\n")
        send_at = occasion.send_at.isoformat()
        created = occasion.created
        draw = (user_id * 2654435761) % 4294967296 % 1000
        started, finished = occasion.deliveries[user_id % len(LATENESS_STEPS)]
        if draw < 7:
            return head + self._undelivered(notification_id, draw < 4, occasion, attempts, webhook_id, created)
        if draw < 9:
            return (f"{head}{send_at}\tcancelled\t0\tbirthday changed after planning\t{NULL}\t{webhook_id}\t"
                    f"{NULL}\t{created}\t{send_at}\n")
        attempts.append(self._attempt(notification_id, 1, started, finished, "200", NULL, occasion.run_id))
        return f"{head}{send_at}\tsent\t1\t{NULL}\t{finished}\t{webhook_id}\t{NULL}\t{created}\t{finished}\n"

    def _undelivered(self, notification_id: int, refused: bool, occasion: Occasion, attempts: list[str],
                     webhook_id: str, created: str) -> str:
        """Refused (one 400) or unreachable (three timeouts): failed in the late window, expired after it."""
        assert occasion.send_at is not None
        first = occasion.send_at + LATENESS_STEPS[0] - RECEIVER_LATENCY
        tries = 1 if refused else 3
        status, error = ("400", "HTTP 400") if refused else (NULL, "timeout")
        for number in range(tries):
            at = first + RETRY_GAPS[number]
            attempts.append(self._attempt(notification_id, number + 1, at.isoformat(),
                                          (at + RECEIVER_LATENCY).isoformat(), status, error, occasion.run_id))
        last = first + RETRY_GAPS[tries - 1] + RECEIVER_LATENCY
        send_at = occasion.send_at.isoformat()
        if occasion.recent:
            retry_after = NULL if refused else (last + timedelta(minutes=10)).isoformat()
            return (f"{send_at}\tfailed\t{tries}\t{error}\t{NULL}\t{webhook_id}\t{retry_after}\t{created}\t"
                    f"{last.isoformat()}\n")
        expired_at = (occasion.send_at + timedelta(hours=self.settings.max_lateness_hours, minutes=5)).isoformat()
        return (f"{send_at}\texpired\t{tries}\t{self.expired_reason}\t{NULL}\t{webhook_id}\t{NULL}\t{created}\t"
                f"{expired_at}\n")

    @staticmethod
    def _attempt(notification_id: int, number: int, started: str, finished: str, status: str, error: str,
                 run_id: str) -> str:
        # One claim token per release batch of 2,000 rows, as the hourly DAG's send tasks leave them.
        return (f"{notification_id}\t{number}\t{_uuid(notification_id // 2000)}\t{started}\t{finished}\t{status}\t"
                f"{error}\t100.0\t{TASK[0]}\t{run_id}\t{TASK[1]}\t{notification_id // 2000 % 8}\t{number}\n")


def _uuid(number: int) -> str:
    text = f"{number:032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-8{text[17:20]}-{text[20:]}"


def month_days_oldest_first(moment: datetime) -> list[int]:
    """Every birth month-day, in the order their last birthday before ``moment`` came (roughly: by date)."""
    days = [date(2000, 1, 1) + timedelta(days=n) for n in range(366)]
    month_days = [day.month * 100 + day.day for day in days]
    today = moment.month * 100 + moment.day
    return [md for md in month_days if md >= today] + [md for md in month_days if md < today]


def users_born_on(cursor: Any, month_day: int) -> list[tuple[int, int, str]]:
    """The users born on ``month_day`` (id, month-day, zone or ``\\N``), read by the planning index."""
    buffer = io.StringIO()
    cursor.copy_expert(cursor.mogrify(USERS_BORN_ON, {"month_day": month_day}).decode(), buffer)
    users = []
    for line in buffer.getvalue().splitlines():
        user_id, _, zone = line.split("\t")
        users.append((int(user_id), month_day, zone))
    return users


def load_history(conn: Any, moment: datetime, settings: Settings, *, recent_only: bool) -> int:
    """Empty both tables and load the year's rows (or only the late window's); return the rows loaded."""
    generator = HistoryGenerator(moment, settings)
    recent_days = {day.month * 100 + day.day for day in _dates_between(generator.late_from.date(), moment.date())}
    with conn.cursor() as cursor:
        cursor.execute("TRUNCATE notifications RESTART IDENTITY CASCADE")
        cursor.execute("SET session_replication_role = replica")
        for month_day in month_days_oldest_first(moment):
            if recent_only and month_day not in recent_days:
                continue
            notifications, attempts = generator.rows(users_born_on(cursor, month_day), recent_only)
            cursor.copy_expert(f"COPY notifications ({NOTIFICATION_COLUMNS}) FROM STDIN", io.StringIO(notifications))
            cursor.copy_expert(f"COPY notification_attempts ({ATTEMPT_COLUMNS}) FROM STDIN", io.StringIO(attempts))
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("SELECT count(*), coalesce(max(id), 0) FROM notifications")
        count, last_id = cursor.fetchone()
    conn.commit()
    if count != generator.next_id - 1 or last_id != count:
        raise RuntimeError(f"history ids out of step: {count} rows, last id {last_id}, {generator.next_id - 1} written")
    vacuum_analyze(conn, "notifications")
    vacuum_analyze(conn, "notification_attempts")
    checkpoint(conn)
    return count


def _dates_between(first: date, last: date) -> Iterator[date]:
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)


# --- the Birthdays page on a real Airflow API server -------------------------------------------------------


@contextmanager
def page_api(server: str, app_url: str) -> Iterator[Callable[[str], float]]:
    """An Airflow API server with the Birthdays plugin; yields ``get(path) -> seconds`` as its admin user."""
    from tests.real_services import AirflowServices, free_port

    metadata_url = local_postgres.fresh_database(server, PAGE_DATABASE)
    home = Path(tempfile.mkdtemp(prefix="birthday-bench-page-"))
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN: ADMIN_PASSWORD}), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": local_postgres.sqlalchemy_url(metadata_url),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(local_postgres.PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(local_postgres.PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API_AUTH__JWT_SECRET": "birthday-bench-page-jwt-secret",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW_CONN_BIRTHDAY_DB": local_postgres.airflow_connection(app_url),
        "PYTHONPATH": str(local_postgres.PROJECT_DIR),
    }
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=environment, check=True, capture_output=True)
    services = AirflowServices(url, {"api-server": ["api-server", "--port", str(port)]}, environment, home)
    services.start("api-server")
    try:
        token = _admin_token(url, home)

        def get(path: str) -> float:
            request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {path} answered {response.status}")
            return time.perf_counter() - started

        yield get
    finally:
        services.stop_all()


def _admin_token(url: str, home: Path, timeout: float = 180) -> str:
    """Log in as the admin user through Airflow's own ``/auth/token``, once the server answers."""
    login = json.dumps({"username": ADMIN, "password": ADMIN_PASSWORD}).encode()
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(f"{url}/auth/token", data=login, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.load(response)["access_token"]
        except OSError:
            if time.monotonic() > deadline:
                log = (home / "api-server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the API server did not answer within {timeout} s:\n{log}") from None
            time.sleep(1)


# --- the measured paths ------------------------------------------------------------------------------------


def measure_paths(conn: Any, get: Callable[[str], float], moment: datetime, settings: Settings,
                  user_ids: list[int]) -> dict[str, float]:
    """Seconds of every recurring path at ``moment`` in the tables' current state (medians; p95 for the page)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM notifications")
        (last_id,) = cursor.fetchone()
    conn.commit()
    busiest = hourly_window(moment - timedelta(hours=1))

    def forget_planned() -> None:
        with conn.cursor() as cursor:
            cursor.execute("DELETE FROM notifications WHERE id > %(last_id)s", {"last_id": last_id})
        conn.commit()

    plan_seconds, floor_seconds = [], []
    for _ in range(PLAN_REPEATS):
        forget_planned()
        plan_seconds.append(timed(lambda: plan_window(conn, busiest, settings)))
    # The same rows inserted with nothing computed or looked up: what writing them costs in this state.
    execute(conn, "keep_planned", {"last_id": last_id})
    for _ in range(PLAN_REPEATS):
        forget_planned()
        floor_seconds.append(timed(lambda: execute(conn, "write_planned")))
    figures = {
        "plan": statistics.median(plan_seconds),
        "plan_write_floor": statistics.median(floor_seconds),
        "sweep_find_due": _median_of(DB_REPEATS, lambda: sweep_late_window(conn, moment, settings)),
        "sweep_summarize": _median_of(DB_REPEATS, lambda: window_counts(conn, late_window(moment, settings), settings)),
        "hourly_summarize": _median_of(DB_REPEATS, lambda: window_counts(conn, busiest, settings)),
    }
    forget_planned()
    yesterday = (moment - timedelta(days=1)).date().isoformat()
    for _ in range(PAGE_WARM_UP):  # the first requests of each route import its code and open connections
        get(f"/birthdays/api/day?day={yesterday}")
        get(f"/birthdays/api/users/{user_ids[0]}")
    day_seconds = [get(f"/birthdays/api/day?day={yesterday}") for _ in range(PAGE_REQUESTS)]
    user_seconds = [get(f"/birthdays/api/users/{user_id}") for user_id in user_ids]
    return {**figures, "page_day_p95": percentile(day_seconds, 0.95), "page_user_p95": percentile(user_seconds, 0.95)}


def _median_of(repeats: int, action: Callable[[], Any]) -> float:
    """The median of ``repeats`` runs after one untimed run (the first reads the pages into the cache)."""
    action()
    return statistics.median(timed(action) for _ in range(repeats))


def bench_history(server: str, app_url: str, users: int, settings: Settings, moment: datetime) -> dict[str, Any]:
    """Every path at ``moment`` without and with a year of history over ``users`` users; the ratios."""
    user_ids = random.Random(users).sample(range(1, users + 1), PAGE_REQUESTS)
    started = time.monotonic()
    with page_api(server, app_url) as get, closing(psycopg2.connect(app_url)) as conn:
        recent_rows = load_history(conn, moment, settings, recent_only=True)
        without = measure_paths(conn, get, moment, settings, user_ids)
        load_started = time.monotonic()
        history_rows = load_history(conn, moment, settings, recent_only=False)
        load_s = time.monotonic() - load_started
        with_history = measure_paths(conn, get, moment, settings, user_ids)
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM notification_attempts")
            (attempt_rows,) = cursor.fetchone()
        conn.commit()
    figures: dict[str, Any] = {
        "history_moment": moment.isoformat(),
        "history_rows": history_rows,
        "history_attempt_rows": attempt_rows,
        "history_recent_rows": recent_rows,
        "history_load_s": load_s,
    }
    for path, seconds in without.items():
        figures[f"history_{path}_ms_without"] = 1000 * seconds
        figures[f"history_{path}_ms_with"] = 1000 * with_history[path]
    for path in without:
        if path != "plan_write_floor":
            figures[f"history_ratio_{path}"] = with_history[path] / without[path]
    # The least ratio a planner could reach that kept everything else it spends without history and, with it,
    # spent only what writing the same rows costs more (as plan_ratio_floor does for ten times the users).
    figures["history_plan_ratio_floor"] = (
        without["plan"] - without["plan_write_floor"] + with_history["plan_write_floor"]) / without["plan"]
    figures["history_phase_s"] = time.monotonic() - started
    return figures
