"""The webhook request's Standard Webhooks headers and signature (whatever the body's shape, deliver/messages),
and how a response is judged."""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


class InvalidSecretError(ValueError):
    """A signing secret that is not ``whsec_`` followed by a base64 key (the message never shows the secret)."""


@functools.lru_cache(maxsize=8)
def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret, ``whsec_`` + base64; decoded once per secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecretError(f"the signing secret does not start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecretError(f"the signing secret is not {SECRET_PREFIX!r} followed by base64") from None
    if not key:
        raise InvalidSecretError(f"the signing secret has no key after {SECRET_PREFIX!r}")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of the Standard Webhooks spec: ``v1,`` + base64 HMAC-SHA256."""
    digest = hmac.digest(signing_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(secret: str, webhook_id: str, timestamp: str, body: bytes, signature_header: str) -> bool:
    """Whether any ``v1,`` entry of a space-separated ``webhook-signature`` header signs this message."""
    expected = sign(secret, webhook_id, int(timestamp), body)
    return any(hmac.compare_digest(entry, expected) for entry in signature_header.split())


def request_headers(webhook_id: str, timestamp: int, body: bytes, secret: str | None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "Idempotency-Key": webhook_id,
    }
    if secret:
        headers["webhook-signature"] = sign(secret, webhook_id, timestamp, body)
    return headers


def is_success(status: int) -> bool:
    return 200 <= status < 300


def is_retryable(status: int) -> bool:
    """408, 429 and 5xx may succeed later; any other non-2xx answer will not."""
    return status in (408, 429) or status >= 500


GONE = 410


def is_gone(status: int | None) -> bool:
    """A ``410 Gone``: the Standard Webhooks spec's "the endpoint was removed, stop sending". It disables the
    endpoint (``deliver.endpoints``); the row waits for it to be enabled again rather than failing."""
    return status == GONE


def is_endpoint_failure(status: int | None) -> bool:
    """Whether an outcome counts against the endpoint's circuit breaker: no answer at all (``None``: a
    connection error, a timeout) or a 5xx. Any other answer is the endpoint speaking about the request."""
    return status is None or status >= 500


def failure_reason(status: int) -> str:
    """What a non-2xx answer is recorded as: ``HTTP <status>``, with why a redirect is a failure.

    A redirect is never followed: its ``Location`` is the endpoint's to choose, may carry credentials, and a
    signed message goes only to the URL the operator configured. It fails the notification for good.
    """
    if 300 <= status < 400:
        return f"HTTP {status}: redirect to another URL is not followed"
    return f"HTTP {status}"


# More digits than this are more seconds than any wait we honour (and more than int() reads by default).
_LONGEST_DELTA_SECONDS_DIGITS = 12


def retry_after_delay(header: str | None, now: datetime, longest: timedelta) -> timedelta | None:
    """The wait a ``Retry-After`` header asks for, at most ``longest``; None if absent or unreadable.

    RFC 9110 allows delta-seconds (ASCII digits: ``"²"`` and ``"٣"`` are digits to Python, not to HTTP) or an
    HTTP date (one in the past asks for no wait). Anything else, a negative number included, is unreadable.
    Never raises, whatever the endpoint sends.
    """
    if header is None:
        return None
    value = header.strip()
    if value.isascii() and value.isdigit():
        if len(value) > _LONGEST_DELTA_SECONDS_DIGITS:
            return longest
        return min(timedelta(seconds=int(value)), longest)
    try:
        asked_for = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if asked_for.tzinfo is None:
        asked_for = asked_for.replace(tzinfo=UTC)
    try:
        wait = asked_for - now
    except OverflowError:
        return longest
    return min(max(wait, timedelta(0)), longest)
