"""Every status a notification can be in: the values the schema's CHECK constraint on ``notifications.status``
allows (tests/integration/test_status.py keeps the two, and the SQL's quoted statuses, in step)."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    SCHEDULED = "scheduled"  # planned, waiting for its instant
    SENDING = "sending"  # claimed by a task under a lease
    SENT = "sent"
    FAILED = "failed"  # retried below the attempt cap, unless refused for good
    EXPIRED = "expired"  # its instant left the late window unsent
    INVALID = "invalid"  # the user's row cannot be planned; the reason names the column
    CANCELLED = "cancelled"  # the user no longer exists
