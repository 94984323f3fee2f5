"""Send chosen notifications again, on an operator's request: decide, log, and send through the delivery code.

For each requested user the notification of one occasion and date is looked up and judged: a row never
sent (failed, expired, cancelled, or scheduled with its instant passed) is sent under its own webhook-id;
a row already ``sent`` is refused, and re-sent with a new webhook-id only when ``force`` is set. A user who
opted out (the opt-out column holds true) is refused unless ``force`` is set. A dry run only says what would
happen. Decisions and logs carry ids, statuses and instants, never names or dates of
birth.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import uuid
from datetime import date, datetime
from typing import Any

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import compose
from birthday_pipeline.plan.planning import user_identifiers
from birthday_pipeline.deliver.claims import claim_rows
from birthday_pipeline.deliver.delivery import DeliverySummary, Sender, deliver_claimed
from birthday_pipeline.deliver.fanout import utc_now
from birthday_pipeline.rules.occasions import Occasion
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ResendRequest:
    """What the operator asked for in the trigger form."""

    user_ids: list[int]
    occasion: Occasion
    occasion_date: date
    dry_run: bool = True
    force: bool = False

    def __post_init__(self) -> None:
        if not self.user_ids:
            raise ValueError("user_ids is empty: name at least one user id")


class Action(enum.StrEnum):
    SEND = "send"
    RESEND = "resend with a new webhook-id"
    REFUSE = "refuse"


@dataclasses.dataclass(frozen=True)
class Decision:
    user_id: int
    notification_id: int | None
    status: str | None
    action: Action
    reason: str
    send_at: datetime | None
    webhook_id: str | None  # the id the message goes out with; None when a new one will be drawn


@dataclasses.dataclass(frozen=True)
class LookedUp:
    user_id: int
    user_exists: bool
    notification_id: int | None
    status: str | None
    send_at: datetime | None
    sent_at: datetime | None
    webhook_id: uuid.UUID | None
    last_error: str | None
    claim_live: bool | None  # under a claim whose lease has not run out (the database clock's verdict)
    opted_out: bool = False  # the user's opt-out column holds true (the opt_out_column setting)


def decide(row: LookedUp, request: ResendRequest, now: datetime, requested_at: datetime) -> Decision:
    """What the resend does with one requested user, and why (the rules of resend/claim.sql, in words)."""

    def refuse(reason: str) -> Decision:
        return Decision(row.user_id, row.notification_id, row.status, Action.REFUSE, reason, row.send_at,
                        row.webhook_id and str(row.webhook_id))

    def send(action: Action, reason: str) -> Decision:
        webhook_id = None if action is Action.RESEND else str(row.webhook_id)
        return Decision(row.user_id, row.notification_id, row.status, action, reason, row.send_at, webhook_id)

    if not row.user_exists:
        return refuse("no such user")
    if row.opted_out and not request.force:
        return refuse("the user opted out; set force to send anyway")
    if row.notification_id is None:
        return refuse(f"no {request.occasion.name} notification planned for this user on that date")
    if row.status == Status.INVALID:
        return refuse(f"invalid: {row.last_error}")
    if row.status == Status.SCHEDULED and row.send_at is not None and row.send_at > now:
        return refuse(f"scheduled for {row.send_at.isoformat()}; it is sent then, never earlier")
    if row.status == Status.SENDING and row.claim_live:
        return refuse("being sent by another task right now")
    if row.status == Status.SENT:
        sent_at = row.sent_at.isoformat() if row.sent_at else "an unknown time"
        if not request.force:
            return refuse(f"already sent at {sent_at} with webhook-id {row.webhook_id}; set force to send it again")
        if row.sent_at is not None and row.sent_at >= requested_at:
            return refuse(f"already re-sent by this request at {sent_at}")
        return send(Action.RESEND, f"forced: was sent at {sent_at} with webhook-id {row.webhook_id}")
    return send(Action.SEND, f"{row.status}, never delivered" + (f" (last error: {row.last_error})"
                                                                 if row.last_error else ""))


@dataclasses.dataclass(frozen=True)
class ResendResult:
    decisions: list[Decision]
    delivery: DeliverySummary | None  # None for a dry run or when nothing was to be sent

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for decision in self.decisions:
            counts[decision.action.value] += 1
        return counts


def resend(conn: Any, request: ResendRequest, settings: Settings, sender: Sender | None,
           requested_at: datetime) -> ResendResult:
    """Judge each requested notification, log the decision, and unless a dry run send those to be sent.

    ``sender`` is what the sending is done with; a dry run needs none.
    """
    now = (sender.clock if sender else utc_now)()
    with dict_cursor(conn) as cursor:
        cursor.execute(compose(conn, "resend/look_up", **user_identifiers(settings, versions_of=("n", "user_id"))),
                       {"user_ids": request.user_ids, "occasion": request.occasion.name,
                        "occasion_date": request.occasion_date})
        decisions = [decide(LookedUp(**row), request, now, requested_at) for row in cursor.fetchall()]
    conn.commit()
    prefix = "Dry run, would" if request.dry_run else "Will"
    for decision in decisions:
        if decision.action is Action.REFUSE:
            log.info("Refused user %d notification %s (%s): %s", decision.user_id, decision.notification_id,
                     decision.status, decision.reason)
        else:
            log.info("%s %s user %d notification %d, instant %s, webhook-id %s: %s", prefix, decision.action.value,
                     decision.user_id, decision.notification_id,
                     decision.send_at.isoformat() if decision.send_at else "none",
                     decision.webhook_id or "new", decision.reason)
    to_send = [decision.notification_id for decision in decisions if decision.action is not Action.REFUSE]
    if request.dry_run or not to_send:
        return ResendResult(decisions, None)
    if sender is None:
        raise ValueError("a resend that sends needs a sender")

    claim = claim_rows(conn, "resend/claim",
                       {"ids": to_send, "now": now, "force": request.force, "requested_at": requested_at},
                       sender.settings, sender.task)
    claimed = claim.rows
    if len(claimed) != len(to_send):
        log.warning("%d of %d notifications changed since they were judged and are left alone: ids %s",
                    len(to_send) - len(claimed), len(to_send),
                    sorted(set(to_send) - {row.id for row in claimed}))
    for row in claimed:
        log.info("Sending notification %d with webhook-id %s", row.id, row.webhook_id)
    summary = deliver_claimed(conn, claim, sender, honour_opt_out=not request.force)
    return ResendResult(decisions, summary)
