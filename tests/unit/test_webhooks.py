"""The webhook request: body, headers, Standard Webhooks signatures and which answers are retried."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from hypothesis import given, strategies as st

from birthday_pipeline.deliver.webhooks import (
    InvalidSecretError,
    failure_reason,
    is_retryable,
    is_success,
    request_headers,
    retry_after_delay,
    sign,
    signing_key,
    verify,
)
from birthday_pipeline.deliver.messages import Renderer
from birthday_pipeline.settings import Settings

# The published test vector of the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_spec_test_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert verify(SECRET, MSG_ID, str(TIMESTAMP), BODY, SIGNATURE)
    assert verify(SECRET, MSG_ID, str(TIMESTAMP), BODY, f"v1,c29tZXRoaW5nZWxzZQ== {SIGNATURE}")


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [(MSG_ID, TIMESTAMP, b'{"test": 2432232315}'), ("msg_other", TIMESTAMP, BODY), (MSG_ID, TIMESTAMP + 1, BODY)],
)
def test_any_change_to_the_message_breaks_the_signature(msg_id: str, timestamp: int, body: bytes) -> None:
    assert not verify(SECRET, msg_id, str(timestamp), body, SIGNATURE)


def test_body_carries_the_message_and_ids_as_json() -> None:
    body = Renderer(Settings()).body(7, 42, "Zoë", "O'Brien", "birthday", date(2026, 12, 15), date(1990, 12, 15),
                                     None, "wh-7")
    assert body == ('{"message":"Hey, Zoë O\'Brien it\'s your birthday","notification_id":7,"user_id":42,'
                    '"occasion":"birthday","occasion_date":"2026-12-15"}').encode()
    assert json.loads(body) == {
        "message": "Hey, Zoë O'Brien it's your birthday",
        "notification_id": 7,
        "user_id": 42,
        "occasion": "birthday",
        "occasion_date": "2026-12-15",
    }


def test_headers_are_signed_only_with_a_secret() -> None:
    headers = request_headers("id-1", TIMESTAMP, BODY, SECRET)
    assert headers == {
        "Content-Type": "application/json",
        "webhook-id": "id-1",
        "webhook-timestamp": str(TIMESTAMP),
        "Idempotency-Key": "id-1",
        "webhook-signature": sign(SECRET, "id-1", TIMESTAMP, BODY),
    }
    assert "webhook-signature" not in request_headers("id-1", TIMESTAMP, BODY, None)


@pytest.mark.parametrize(
    ("status", "success", "retryable"),
    [(200, True, False), (204, True, False), (301, False, False), (400, False, False), (404, False, False),
     (408, False, True), (410, False, False), (429, False, True), (500, False, True), (503, False, True)],
)
def test_which_answers_succeed_and_which_are_retried(status: int, success: bool, retryable: bool) -> None:
    assert is_success(status) == success
    assert (not is_success(status) and is_retryable(status)) == retryable


@pytest.mark.parametrize(("status", "reason"), [
    (301, "HTTP 301: redirect to another URL is not followed"),
    (307, "HTTP 307: redirect to another URL is not followed"),
    (308, "HTTP 308: redirect to another URL is not followed"),
    (410, "HTTP 410"),
    (500, "HTTP 500"),
])
def test_a_failed_answer_is_recorded_as_its_status_and_a_redirect_says_it_was_not_followed(status: int,
                                                                                          reason: str) -> None:
    assert failure_reason(status) == reason


NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
LONGEST = timedelta(hours=48)


@pytest.mark.parametrize(
    ("header", "delay"),
    [
        (None, None),
        ("7", timedelta(seconds=7)),
        (" 120 ", timedelta(seconds=120)),
        ("0", timedelta(0)),
        ("Sat, 28 Nov 2026 12:00:30 GMT", timedelta(seconds=30)),
        ("Sat, 28 Nov 2026 11:59:00 GMT", timedelta(0)),  # a date in the past: no wait
        ("soon", None),
        ("-5", None),
        ("", None),
        ("3.5", None),
        ("1e3", None),
        # Digits to Python (str.isdigit), not to HTTP: "²" would even make int() raise.
        ("²", None),
        ("٣", None),
        ("１０", None),
        # Longer than any wait worth honouring, or than a timedelta holds: the longest.
        ("999999", LONGEST),
        ("9" * 5000, LONGEST),
        ("Fri, 31 Dec 9999 23:59:59 GMT", LONGEST),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
        ("Mon, 01 Jan 0001 00:00:00 GMT", timedelta(0)),
        ("Sat, 28 Nov 2026 12:00:30 +9999", None),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(header: str | None, delay: timedelta | None) -> None:
    assert retry_after_delay(header, NOW, longest=LONGEST) == delay


HTTP_DATES = st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT"))


@given(header=st.one_of(st.text(), st.integers(-10**30, 10**30).map(str), HTTP_DATES))
def test_retry_after_never_raises_and_never_asks_for_more_than_the_longest(header: str) -> None:
    delay = retry_after_delay(header, NOW, longest=LONGEST)
    assert delay is None or timedelta(0) <= delay <= LONGEST


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_abc",
                                    "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
def test_a_secret_that_is_not_whsec_and_base64_is_refused_without_showing_it(secret: str) -> None:
    with pytest.raises(InvalidSecretError) as refused:
        signing_key(secret)
    assert "MfKQ9r8G" not in str(refused.value) and "not base64!" not in str(refused.value)


def test_the_message_trims_unicode_blanks_around_each_name() -> None:
    def message(first_name: str, last_name: str) -> str:
        body = Renderer(Settings()).body(1, 1, first_name, last_name, "birthday", date(2026, 1, 1), None, None, "w")
        return json.loads(body)["message"]

    assert message("\u3000Zoë\u200b", "\u00a0") == "Hey, Zoë it's your birthday"
    assert message("\u3164Ada", "Lovelace\ufeff\u2800") == "Hey, Ada Lovelace it's your birthday"
    family = "👨\u200d👩\u200d👧"  # joiners inside a name stay
    assert message("Jean", f"Picard {family}") == f"Hey, Jean Picard {family} it's your birthday"
