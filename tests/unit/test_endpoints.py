"""A send task's watch on its endpoint: which outcomes stop a batch, and what each does to its row."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from birthday_pipeline.deliver.claims import ClaimedRow
from birthday_pipeline.deliver.endpoints import Admission, Endpoint, Watch
from birthday_pipeline.deliver.fanout import Attempt
from birthday_pipeline.deliver.webhooks import failure_reason
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status

AT = datetime(2026, 12, 4, 9, tzinfo=UTC)
ROW = ClaimedRow(1, 42, "birthday", date(2026, 12, 4), AT, uuid.uuid4(), 0, "Ada", "Lovelace", "UTC",
                 (date(1990, 12, 4), None), 1)
ENDPOINT = Endpoint.of("https://hooks.example.com/secret-path", "birthday_webhook", Settings(breaker_failures=3))
EVERY_ROW = Admission(None, 0)


def outcome(status: int | None) -> Attempt:
    """An attempt answered ``status`` (None: no answer at all)."""
    ok = status is not None and 200 <= status < 300
    error = None if ok else (failure_reason(status) if status is not None else "ClientConnectorError")
    return Attempt(ROW, AT, AT, status, error, status is None or status >= 500, 1.0, None)


def watched(*statuses: int | None, admission: Admission = EVERY_ROW) -> Watch:
    watch = Watch(ENDPOINT, admission)
    for status in statuses:
        watch.observe(outcome(status))
    return watch


def test_an_endpoint_is_named_by_the_hash_of_its_url_never_the_url() -> None:
    assert len(ENDPOINT.key) == 64 and "secret" not in ENDPOINT.key
    assert ENDPOINT == Endpoint.of("https://hooks.example.com/secret-path", "birthday_webhook",
                                   Settings(breaker_failures=3))
    assert ENDPOINT.key != Endpoint.of("https://hooks.example.com/other", None, Settings()).key


@pytest.mark.parametrize(("statuses", "stopped"), [
    ((None, 500, 503), True),  # three failures in a row: the breaker's count
    ((None, 500, 200, 503, None), False),  # a 2xx resets the count
    ((500, 404, 429, 408, 500, None), True),  # answers about the request neither count nor reset
    ((410,), True),  # gone: stop at once
    ((400, 404, 422, 429, 408, 302), False),
])
def test_what_stops_a_batch(statuses: tuple[int | None, ...], stopped: bool) -> None:
    assert watched(*statuses).stopped() is stopped


def test_the_count_goes_on_from_what_every_task_counted_before() -> None:
    assert watched(500, admission=Admission(None, 2)).stopped()
    # A probe's task found the breaker open: its one request decides, so it may be sent.
    assert not watched(admission=Admission(1, 3)).stopped()


@pytest.mark.parametrize(("status", "row_status"), [
    (200, Status.SENT), (410, Status.SCHEDULED), (404, Status.FAILED), (500, Status.FAILED), (None, Status.FAILED)])
def test_what_each_answer_makes_of_its_row(status: int | None, row_status: Status) -> None:
    assert outcome(status).row_status == row_status
