"""The pipeline's health in Prometheus' text format, for ``/birthdays/metrics``: names, help texts, rendering.

Rendered with ``prometheus_client`` from figures computed in the database (``report.health``), so every API
server process answers the same. docs/operations.md lists the metrics and an alert rule built on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from birthday_pipeline.ids import HOURLY_DAG
from birthday_pipeline.operate.report import Health

NOTIFICATIONS = HOURLY_DAG
LATENESS = "birthday_delivery_lateness_seconds"
UNSENT_DUE = "birthday_unsent_due"
OLDEST_UNSENT_DUE = "birthday_oldest_unsent_due_seconds"
# The media type of what ``exposition`` renders (the client library's text format).
CONTENT_TYPE = CONTENT_TYPE_LATEST


class _HealthCollector:
    def __init__(self, health: Health) -> None:
        self._health = health

    def collect(self) -> Iterator[Metric]:
        health = self._health
        notifications = GaugeMetricFamily(
            NOTIFICATIONS, "Notifications whose send instant falls in the UTC day (invalid ones: celebrated that "
            "date), per occasion and status.", labels=["day", "occasion", "status"])
        for day, by_occasion in health.counts.items():
            for occasion, by_status in by_occasion.items():
                for status, count in by_status.items():
                    notifications.add_metric([day, occasion, status], count)
        yield notifications

        lateness = Metric(LATENESS, "Lateness (sent_at - send_at) of today's deliveries (UTC day of the instant).",
                          "summary")
        for quantile, value in health.lateness_quantiles.items():
            lateness.add_sample(LATENESS, {"day": "today", "quantile": str(quantile)},
                                math.nan if value is None else value)
        lateness.add_sample(f"{LATENESS}_sum", {"day": "today"}, health.lateness_sum)
        lateness.add_sample(f"{LATENESS}_count", {"day": "today"}, health.lateness_count)
        yield lateness

        yield GaugeMetricFamily(UNSENT_DUE, "Notifications past their instant and not sent yet (scheduled, sending, "
                                "or failed and waiting for a retry).", value=health.unsent_due)
        yield GaugeMetricFamily(OLDEST_UNSENT_DUE, "How far past its instant the oldest unsent due notification is "
                                "(0 when none is).", value=health.oldest_unsent_due_seconds)


def exposition(health: Health) -> bytes:
    """``health`` in the Prometheus text exposition format, of media type ``CONTENT_TYPE``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_HealthCollector(health))
    return generate_latest(registry)
