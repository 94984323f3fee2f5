"""The webhook request: message text, JSON body and Standard Webhooks headers, and how a response is judged."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta

SECRET_PREFIX = "whsec_"


BIRTHDAY_MESSAGE = "Hey, {name} it's your birthday"


def render_message(template: str, first_name: str, last_name: str) -> str:
    """``template`` with ``{name}`` replaced by the first and last name, blanks trimmed."""
    name = " ".join(part.strip() for part in (first_name, last_name) if part.strip())
    return template.replace("{name}", name)


def birthday_message(first_name: str, last_name: str) -> str:
    return render_message(BIRTHDAY_MESSAGE, first_name, last_name)


def request_body(
    notification_id: int,
    user_id: int,
    first_name: str,
    last_name: str,
    occasion: str,
    occasion_date: date,
    message_template: str = BIRTHDAY_MESSAGE,
) -> bytes:
    return json.dumps(
        {
            "message": render_message(message_template, first_name, last_name),
            "notification_id": notification_id,
            "user_id": user_id,
            "occasion": occasion,
            "occasion_date": occasion_date.isoformat(),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of the Standard Webhooks spec: ``v1,`` + base64 HMAC-SHA256."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
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


def retry_after_delay(header: str | None, now: datetime) -> timedelta | None:
    """The wait a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent or unreadable."""
    if header is None:
        return None
    value = header.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        asked_for = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if asked_for.tzinfo is None:
        asked_for = asked_for.replace(tzinfo=UTC)
    return max(asked_for - now, timedelta(0))
