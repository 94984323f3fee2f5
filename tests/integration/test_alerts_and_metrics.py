"""Alerts and task metrics from real task runs: ``dag.test()`` of the hourly and sweep DAGs, real PostgreSQL, a
real webhook receiver, a real HTTP server behind connection ``birthday_alerts`` and a real UDP StatsD listener
behind Airflow's ``[metrics]`` settings.

One story, run once for the module: an hourly run delivers a small cohort in three mapped batches, one
message refused (HTTP 400) and one user with an unknown zone; an outage left one row unsent four hours ago
and a send task hangs on another row due two hours ago. Then the sweep expires the old row and finds the
hung one late; the hung task's lease runs out and the next sweep delivers it; the next hourly runs end
clean, the first without the alerts connection.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from birthday_pipeline.plan.planning import User
from birthday_pipeline.settings import SETTINGS_ENVIRONMENT
from tests.conftest import WEBHOOK_SECRET, insert_users, set_settings, settings_text
from tests.statsd_listener import Metric, StatsdListener
from tests.webhook_receiver import Answer, WebhookReceiver

SENT_USERS, REFUSED_USER, INVALID_USER, HUNG_USER, OUTAGE_USER = [1, 2, 3], 4, 5, 6, 7
ANNIVERSARY_USER = 3
BIRTH_YEAR = 1990
PREFIX = "airflow.birthday_pipeline."
SETTINGS = {"max_lateness_hours": 3, "batch_size": 2, "late_alert_minutes": 30}


def whole_hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


def initialize_task_metrics() -> None:
    """What a task process does when it starts (``task_runner.main``): pick the metrics backend from ``[metrics]``."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.metrics import stats_utils

    stats.initialize(factory=stats_utils.get_stats_factory(),
                     export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))


class Story:
    """What the runs did: the alerts received, the metrics received, the runs and the rows' ids."""

    def __init__(self, db: Any, alerts: WebhookReceiver, webhook: WebhookReceiver, statsd: StatsdListener) -> None:
        self.db, self.alerts_receiver, self.webhook, self.statsd = db, alerts, webhook, statsd
        self.runs: dict[str, Any] = {}
        self.day = date.today()

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [request.json for request in self.alerts_receiver.requests]

    def notification_id(self, user_id: int, occasion: str = "birthday") -> int:
        self.db.rollback()
        with self.db.cursor() as cursor:
            cursor.execute("SELECT id FROM notifications WHERE user_id = %s AND occasion = %s", (user_id, occasion))
            (found,) = cursor.fetchone()
        self.db.rollback()
        return found

    def statuses(self) -> Counter:
        self.db.rollback()
        with self.db.cursor() as cursor:
            cursor.execute("SELECT occasion, status, count(*) FROM notifications GROUP BY 1, 2")
            found = Counter({(occasion, status): count for occasion, status, count in cursor.fetchall()})
        self.db.rollback()
        return found


def tell_the_story(db: Any, alerts: WebhookReceiver, webhook: WebhookReceiver, statsd: StatsdListener) -> Story:
    from tests.airflow_dagbag import DagBag

    story = Story(db, alerts, webhook, statsd)
    instant = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
    story.day = day = instant.date()
    os.environ[SETTINGS_ENVIRONMENT] = settings_text(os.environ.get(SETTINGS_ENVIRONMENT),
                                                     send_local_time=instant.strftime("%H:%M:%S"))
    with db.cursor() as cursor:
        cursor.execute("TRUNCATE users, notifications, claim_leases, open_alerts RESTART IDENTITY CASCADE")
    db.commit()
    birthday = day.replace(year=BIRTH_YEAR)
    insert_users(db, [
        *(User(user_id, birthday, "UTC", "Ada", "Lovelace",
               {"hired_on": day.replace(year=2015)} if user_id == ANNIVERSARY_USER else {})
          for user_id in SENT_USERS),
        User(REFUSED_USER, birthday, "UTC", "Ada", "Lovelace"),
        User(INVALID_USER, birthday, "Mars/Olympus_Mons", "Ada", "Lovelace"),
        User(HUNG_USER, birthday, "Etc/GMT-2", "Ada", "Lovelace"),
        User(OUTAGE_USER, birthday, "Etc/GMT-4", "Ada", "Lovelace"),
    ])
    # An outage left the UTC+4 user's row unsent four hours ago; a send task claimed the UTC+2 user's row, due
    # two hours ago, and hangs on it, its lease still live.
    hung_claim = str(uuid.uuid4())
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notifications (user_id, occasion_date, send_at, status, claim_token, claimed_at)"
            " VALUES (%s, %s, %s, 'scheduled', NULL, NULL), (%s, %s, %s, 'sending', %s, now())",
            (OUTAGE_USER, day, instant - timedelta(hours=4), HUNG_USER, day, instant - timedelta(hours=2),
             hung_claim))
        cursor.execute("INSERT INTO claim_leases (claim_token, expires_at) VALUES (%s, now() + interval '1 hour')",
                       (hung_claim,))
    db.commit()
    webhook.answer_with(lambda request: Answer(400 if request.json["user_id"] == REFUSED_USER else 200))

    bag = DagBag()
    hourly, sweep = bag.get_dag("birthday_notifications"), bag.get_dag("birthday_sweep")
    anchor = whole_hour(instant) - timedelta(hours=1)
    story.runs["hourly"] = hourly.test(logical_date=anchor)
    story.runs["sweep_late"] = sweep.test()
    with db.cursor() as cursor:
        cursor.execute("UPDATE claim_leases SET expires_at = now() - interval '1 second' WHERE claim_token = %s",
                       (hung_claim,))
    db.commit()
    story.runs["sweep_caught_up"] = sweep.test()
    connection = os.environ.pop("AIRFLOW_CONN_BIRTHDAY_ALERTS")
    try:
        story.runs["hourly_clean_unwatched"] = hourly.test(logical_date=anchor + timedelta(hours=2))
    finally:
        os.environ["AIRFLOW_CONN_BIRTHDAY_ALERTS"] = connection
    story.runs["hourly_clean"] = hourly.test(logical_date=anchor + timedelta(hours=3))
    return story


@pytest.fixture(scope="module")
def story(app_database_url) -> Any:
    conn = psycopg2.connect(app_database_url)
    with (pytest.MonkeyPatch.context() as environment, WebhookReceiver() as webhook, WebhookReceiver() as alerts,
          StatsdListener() as statsd):
        # tell_the_story sets the send time in it itself; set here so that it is restored too.
        set_settings(environment, **SETTINGS)
        for name, value in {
            "AIRFLOW_CONN_BIRTHDAY_WEBHOOK": json.dumps(
                {"conn_type": "http", "host": webhook.url, "password": WEBHOOK_SECRET}),
            "AIRFLOW_CONN_BIRTHDAY_ALERTS": json.dumps({"conn_type": "http", "host": f"{alerts.url}/alerts"}),
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        }.items():
            environment.setenv(name, value)
        initialize_task_metrics()
        try:
            yield tell_the_story(conn, alerts, webhook, statsd)
        finally:
            conn.close()
            environment.undo()
            initialize_task_metrics()


def test_the_runs_did_what_the_alerts_will_say(story) -> None:
    assert {name: run.state for name, run in story.runs.items()} == {
        "hourly": "failed", "sweep_late": "success", "sweep_caught_up": "success",
        "hourly_clean_unwatched": "success", "hourly_clean": "success"}
    assert story.statuses() == Counter({
        ("birthday", "sent"): 4, ("work_anniversary", "sent"): 1, ("birthday", "failed"): 1,
        ("birthday", "invalid"): 1, ("birthday", "expired"): 1})


def test_each_run_sends_one_alert_per_kind_and_a_recovery_follows(story) -> None:
    events = [(alert["event"], alert.get("dag_id"), alert.get("run_id")) for alert in story.alerts]
    runs = {name: run.run_id for name, run in story.runs.items()}
    assert events == [
        ("notifications_failed", "birthday_notifications", runs["hourly"]),
        ("notifications_failed", "birthday_sweep", runs["sweep_late"]),
        ("sends_late", "birthday_notifications", runs["sweep_late"]),
        ("recovered", "birthday_sweep", runs["sweep_caught_up"]),
        ("sends_caught_up", "birthday_notifications", runs["sweep_caught_up"]),
        ("recovered", "birthday_notifications", runs["hourly_clean"]),
    ]
    assert {request.path for request in story.alerts_receiver.requests} == {"/alerts"}


def test_the_hourly_alert_counts_the_failed_and_invalid_rows_once_for_all_its_mapped_batches(story) -> None:
    story.db.rollback()
    with story.db.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT map_index) FROM notification_attempts WHERE run_id = %s",
                       (story.runs["hourly"].run_id,))
        (batches,) = cursor.fetchone()
    assert batches == 3  # five messages in batches of two
    hourly = story.alerts[0]
    refused, invalid = story.notification_id(REFUSED_USER), story.notification_id(INVALID_USER)
    assert (hourly["counts"], hourly["failures"], hourly["first_ids"], hourly["total"]) == (
        {"birthday": {"failed": 1, "invalid": 1}}, {"refused (HTTP 400)": 1}, sorted([refused, invalid]), 2)
    path = urllib.parse.urlsplit(hourly["run_url"]).path.split("/")
    assert path[-4:-1] == ["dags", "birthday_notifications", "runs"]
    assert urllib.parse.unquote(path[-1]) == story.runs["hourly"].run_id
    print("hourly alert body:", json.dumps(hourly, indent=1))


def test_the_sweep_reports_the_expired_row_and_the_late_window_then_their_recovery(story) -> None:
    expired, late, recovered, caught_up = story.alerts[1:5]
    assert (expired["counts"], expired["first_ids"]) == (
        {"birthday": {"expired": 1}}, [story.notification_id(OUTAGE_USER)])
    hung = story.notification_id(HUNG_USER)
    (window,) = late["windows"]
    instant = story.runs["hourly"].logical_date + timedelta(hours=1)
    assert window["counts"] == {"birthday": {"sending": 1}} and window["first_ids"] == [hung]
    assert late["late_after_minutes"] == 30 and late["unsent"] == 1
    assert datetime.fromisoformat(window["window_end"]) <= datetime.now(UTC) - timedelta(minutes=30)
    assert datetime.fromisoformat(window["window_start"]) < instant
    assert recovered["reported_by_run_id"] == story.runs["sweep_late"].run_id
    assert [entry["window_start"] for entry in caught_up["windows"]] == [window["window_start"]]
    # The hung row went out once, after its lease ran out.
    assert [request.json["notification_id"] for request in story.webhook.requests].count(hung) == 1
    print("late alert text:\n" + late["text"])


def test_without_the_connection_nothing_is_sent_and_the_run_does_not_fail(story) -> None:
    unwatched = story.runs["hourly_clean_unwatched"]
    assert unwatched.state == "success"
    assert unwatched.run_id not in {alert.get("run_id") for alert in story.alerts}
    # Its recovery was left to the next run that could send it.
    assert story.alerts[-1]["run_id"] == story.runs["hourly_clean"].run_id


def test_no_alert_carries_a_name_a_birthday_or_a_zone(story) -> None:
    bodies = [request.body.decode() for request in story.alerts_receiver.requests]
    assert len(bodies) == 6
    for body in bodies:
        for personal in ("Ada", "Lovelace", str(BIRTH_YEAR), "Mars", "Olympus", "Etc/GMT", "2015-"):
            assert personal not in body, body


def metric_totals(metrics: list[Metric], kind: str) -> Counter:
    totals: Counter = Counter()
    for metric in metrics:
        if metric.name.startswith(PREFIX) and metric.kind == kind:
            totals[metric.name.removeprefix(PREFIX)] += metric.value if kind == "c" else 1
    return totals


def test_the_task_metrics_reach_a_statsd_listener_and_match_the_database(story) -> None:
    metrics = story.statsd.metrics()
    counters = metric_totals(metrics, "c")
    statuses = story.statuses()
    assert counters == {
        # The hourly run planned users 1-4 and the anniversary; the unknown zone is invalid.
        "notifications.planned.birthday": 4, "notifications.planned.work_anniversary": 1,
        "notifications.invalid.birthday": statuses["birthday", "invalid"],
        "notifications.sent.birthday": statuses["birthday", "sent"],
        "notifications.sent.work_anniversary": statuses["work_anniversary", "sent"],
        "notifications.failed.birthday": statuses["birthday", "failed"],
        "notifications.expired.birthday": statuses["birthday", "expired"],
    }
    timers = metric_totals(metrics, "ms")
    # One lateness timing per delivery; one duration per send task that made requests (3 hourly, 1 sweep).
    assert timers == {"delivery.lateness": 5, "batch.duration": 4}
    assert metric_totals(metrics, "g") == {"batch.requests_per_second": 4}
    lateness = [metric.value for metric in metrics if metric.name == PREFIX + "delivery.lateness"]
    # The hourly sends left about 30 s after their instant; the hung row two hours after its instant.
    assert sorted(lateness)[:4] == pytest.approx([30_000] * 4, abs=20_000)
    assert 2 * 3600_000 - 60_000 < max(lateness) < 2 * 3600_000 + 120_000
    print("statsd names:", sorted({metric.name for metric in metrics if metric.name.startswith(PREFIX)}))
