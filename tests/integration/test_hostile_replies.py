"""Whatever the endpoint answers, every answer is recorded and every 2xx is delivered once.

Hypothesis drives a real receiver on 127.0.0.1 to answer each request with a random status and random,
hostile headers: ``Retry-After`` as huge, negative or non-ASCII numbers, dates from year 1 to 9999, garbage,
thousands of digits; redirects with credentials in their ``Location``; odd content types. The send code runs
in-process against real PostgreSQL (``delivery.deliver_batch``, the send task's body), then re-drives what
is due again, as the sweep would. A redirect is never followed: it fails its row for good, saying so.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from birthday_pipeline.deliver.delivery import deliver_batch
from birthday_pipeline.deliver.webhooks import failure_reason
from birthday_pipeline.plan.planning import ReleaseBatch
from birthday_pipeline.settings import Settings
from tests.conftest import insert_due_utc_users
from tests.integration.test_delivery import sender_for
from tests.webhook_receiver import Answer

ROWS = 12

HTTP_DATES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(
    lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT"))
RETRY_AFTER = st.one_of(
    st.integers(-10**6, 10**20).map(str),
    st.sampled_from(["²", "٣", "１０", "1e3", "3.5", " 7 ", "", "soon", "-0", "9" * 5000,
                     "Fri, 31 Dec 99999 23:59:59 GMT"]),
    HTTP_DATES,
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)
OTHER_HEADERS = st.dictionaries(
    st.sampled_from(["Location", "Content-Language", "X-Evil", "Cache-Control", "Set-Cookie"]),
    st.one_of(st.sampled_from(["http://user:secret@elsewhere.example/?token=1", "en; charset=utf-7",
                               "\u202egnp.exe", "no-store"]),
              st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)),
    max_size=3,
)
ANSWERS = st.builds(
    lambda status, retry_after, others: Answer(status, {**others, **({"Retry-After": retry_after}
                                                                      if retry_after is not None else {})}),
    st.sampled_from([200, 201, 202, 204, 299, 301, 302, 400, 404, 408, 410, 418, 429, 500, 502, 503, 599]),
    st.none() | RETRY_AFTER,
    OTHER_HEADERS,
)


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(ANSWERS, min_size=1, max_size=2 * ROWS))
def test_every_answer_is_recorded_and_every_2xx_delivered_once(db, receiver, app_database_url, answers) -> None:
    with db.cursor() as cursor:
        cursor.execute("TRUNCATE users, notifications, webhook_endpoints RESTART IDENTITY CASCADE")
    db.commit()
    instant = insert_due_utc_users(db, ROWS)
    receiver.clear()
    served = iter(answers)
    receiver.answer_with(lambda request: next(served, Answer(200)))
    settings = Settings(send_local_time=instant.time(), max_in_flight=4, retry_after_floor_seconds=0)
    sender = sender_for(receiver, app_database_url, settings)

    errors = []
    for _ in range(2):  # the batch, then what is due again at once (the sweep's re-drive)
        try:
            deliver_batch(db, ReleaseBatch(None, 1, ROWS, ROWS), sender)
        except Exception as error:  # noqa: BLE001 - whatever raised, what was answered must be recorded
            errors.append(error)
            db.rollback()

    requests = receiver.requests
    accepted = Counter(request.headers["webhook-id"] for request in requests if 200 <= request.status < 300)
    assert all(count == 1 for count in accepted.values()), accepted
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT n.webhook_id::text, a.http_status, a.error FROM notification_attempts AS a"
                       " JOIN notifications AS n ON n.id = a.notification_id ORDER BY a.id")
        recorded = cursor.fetchall()
        cursor.execute("SELECT webhook_id::text, status, last_error FROM notifications")
        rows = {webhook_id: (status, last_error) for webhook_id, status, last_error in cursor.fetchall()}
        cursor.execute("SELECT bool_or(disabled_at IS NOT NULL), bool_or(breaker_opened_at IS NOT NULL)"
                       " FROM webhook_endpoints")
        disabled, breaker_open = cursor.fetchone()
    # Every request the receiver answered is an attempt row with the status it answered, in the same order
    # per notification; nothing else is.
    assert sorted(recorded) == sorted((request.headers["webhook-id"], request.status,
                                       None if 200 <= request.status < 300 else failure_reason(request.status))
                                      for request in requests)
    # A redirect fails its row for good, with the reason; its Location is never followed.
    redirected = {webhook_id for webhook_id, status, _ in recorded if 300 <= status < 400}
    assert {rows[webhook_id] for webhook_id in redirected} <= {
        ("failed", f"HTTP {status}: redirect to another URL is not followed") for status in (301, 302)}
    assert {request.path for request in requests} == {"/"}
    # Each row is sent exactly when the receiver accepted it, and failed otherwise: none is left in flight. A 410
    # disables the endpoint, and a run of failures opens its breaker: then the rows not delivered wait, scheduled.
    assert {webhook_id for webhook_id, (status, _) in rows.items() if status == "sent"} == set(accepted)
    assert bool(disabled) == any(request.status == 410 for request in requests)
    assert {status for status, _ in rows.values()} <= (
        {"sent", "failed", "scheduled"} if disabled or breaker_open else {"sent", "failed"})
    assert errors == [], "no answer, however hostile, makes a batch fail"


def test_a_redirect_fails_the_row_for_good_and_its_location_is_never_asked(db, receiver, app_database_url) -> None:
    instant = insert_due_utc_users(db, 2)
    location = receiver.url.replace("://", "://user:s3cret@") + "/elsewhere?token=s3cret"
    receiver.answer_with(lambda request: Answer(307, {"Location": location}))
    settings = Settings(send_local_time=instant.time(), retry_after_floor_seconds=0)

    summary = deliver_batch(db, ReleaseBatch(None, 1, 2, 2), sender_for(receiver, app_database_url, settings))

    reason = "HTTP 307: redirect to another URL is not followed"
    assert sorted(summary.permanent_failures) == [(1, reason), (2, reason)]
    assert [request.path for request in receiver.requests] == ["/", "/"]
    with db.cursor() as cursor:
        cursor.execute("SELECT DISTINCT status, attempts, last_error, retry_after FROM notifications")
        assert cursor.fetchall() == [("failed", 1, reason, None)]
