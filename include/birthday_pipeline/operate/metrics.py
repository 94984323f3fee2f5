"""The pipeline's task metrics: their names, and their emission through Airflow's own metrics API.

Tasks emit through Airflow's ``Stats``, so the metrics go wherever ``[metrics]`` sends
Airflow's (StatsD, Datadog's DogStatsD or OpenTelemetry), with Airflow's ``statsd_prefix`` in front, and
nowhere when metrics are off. Per-occasion names carry the occasion as their last part (StatsD has no tags);
the same value is also passed as the tag ``occasion`` for backends that keep tags. docs/operations.md lists
every name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from birthday_pipeline.status import Status

if TYPE_CHECKING:
    from birthday_pipeline.deliver.delivery import DeliverySummary

PREFIX = "birthday_pipeline"
# Notification counters, each per occasion: ``birthday_pipeline.notifications.<status>.<occasion>``.
# The statuses counted are the notification statuses of the same names; planned counts the scheduled ones.
PLANNED = "planned"
INVALID, SENT, FAILED, EXPIRED = Status.INVALID.value, Status.SENT.value, Status.FAILED.value, Status.EXPIRED.value
COUNTED_STATUSES = (PLANNED, INVALID, SENT, FAILED, EXPIRED)
# One timing per delivered notification: sent_at - send_at.
DELIVERY_LATENESS = f"{PREFIX}.delivery.lateness"
# Per send task: the wall time from its first request to its last answer, and requests per second over it.
BATCH_DURATION = f"{PREFIX}.batch.duration"
BATCH_REQUESTS_PER_SECOND = f"{PREFIX}.batch.requests_per_second"


def notification_counter(status: str, occasion: str) -> str:
    """The counter of notifications of ``occasion`` that reached ``status``."""
    if status not in COUNTED_STATUSES:
        raise ValueError(f"no counter for status {status!r}")
    return f"{PREFIX}.notifications.{status}.{occasion}"


def count_planned(written: Mapping[str, Mapping[str, int]]) -> None:
    """Count the rows planning wrote, per occasion: ``scheduled`` ones as planned, the others as invalid."""
    for occasion, by_status in written.items():
        _count(PLANNED, occasion, by_status.get(Status.SCHEDULED, 0))
        _count(INVALID, occasion, by_status.get(Status.INVALID, 0))


def count_expired(expired: Mapping[str, int]) -> None:
    for occasion, count in expired.items():
        _count(EXPIRED, occasion, count)


def record_delivery(summary: DeliverySummary) -> None:
    """Sent and failed per occasion, the lateness of each delivery, and the batch's duration and rate."""
    stats = airflow_stats()
    for occasion, outcome in summary.by_occasion.items():
        _count(SENT, occasion, outcome.get("sent", 0))
        _count(FAILED, occasion, outcome.get("failed", 0))
    for lateness in summary.lateness_seconds:
        stats.timing(DELIVERY_LATENESS, timedelta(seconds=max(lateness, 0.0)))
    if summary.requests:
        stats.timing(BATCH_DURATION, timedelta(seconds=summary.seconds))
        # A batch of one request answered within the clock's resolution has no meaningful rate.
        if summary.seconds > 0:
            stats.gauge(BATCH_REQUESTS_PER_SECOND, summary.requests / summary.seconds)


def _count(status: str, occasion: str, count: int) -> None:
    if count <= 0:
        return
    airflow_stats().incr(notification_counter(status, occasion), count, tags={"occasion": occasion})


def airflow_stats() -> Any:
    """Airflow's ``Stats``: in the Task SDK from Airflow 3.2 (whose module-level ``incr`` and friends exist only
    from 3.3), in ``airflow.stats`` on 3.1."""
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 3.1
        from airflow.stats import Stats
    return Stats
