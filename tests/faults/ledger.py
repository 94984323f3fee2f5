"""The verdict of a fault case: what the receiver got, set against what the database says.

delivered   webhook-ids the receiver answered with a 2xx at least once
duplicates  2xx-answered requests beyond the first per webhook-id
refused     rows failed for good (a 4xx), by reason; not lost: the endpoint said no
expired     rows past the late window, never sent
lost        users due a message who got none and whose row does not say why (must be 0)
unsettled   users whose row is missing or may still be sent
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.webhook_receiver import ReceivedRequest

ARTIFACTS = Path(__file__).resolve().parents[2] / ".local" / "artifacts"


@dataclasses.dataclass(frozen=True)
class Ledger:
    users: int
    delivered: int
    duplicates: int
    refused: dict[str, int]
    expired: int
    lost: int
    unsettled: int
    timed_out_attempts: int


def ledger_of(db: Any, requests: Iterable[ReceivedRequest], user_ids: list[int]) -> Ledger:
    cohort = set(user_ids)
    accepted = Counter(
        (request.json["user_id"], request.headers["webhook-id"])
        for request in requests
        if request.json["user_id"] in cohort and 200 <= request.status < 300
    )
    delivered_users = {user_id for user_id, _ in accepted}
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT u.id, n.status, n.last_error, n.retry_after IS NULL, n.attempts"
            " FROM users u LEFT JOIN notifications n ON n.user_id = u.id WHERE u.id = ANY (%s)",
            (user_ids,),
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT count(*) FROM notification_attempts a JOIN notifications n ON n.id = a.notification_id"
            " WHERE n.user_id = ANY (%s) AND a.error LIKE 'TimeoutError%%'",
            (user_ids,),
        )
        (timed_out,) = cursor.fetchone()
    refused = Counter(error for _, status, error, final, _ in rows if status == "failed" and final)
    accounted = {user_id for user_id, status, _, final, _ in rows
                 if status in ("expired", "invalid", "cancelled") or (status == "failed" and final)}
    sent_in_db = {user_id for user_id, status, *_ in rows if status == "sent"}
    unsettled = {user_id for user_id, status, _, final, _ in rows
                 if status in (None, "scheduled", "sending") or (status == "failed" and not final)}
    return Ledger(
        users=len(cohort),
        delivered=len(accepted),
        duplicates=sum(count - 1 for count in accepted.values()),
        refused=dict(refused),
        expired=sum(1 for _, status, *_ in rows if status == "expired"),
        # Not delivered and not accounted for, or marked sent without the receiver having it.
        lost=len(cohort - delivered_users - accounted) + len(sent_in_db - delivered_users),
        unsettled=len(unsettled),
        timed_out_attempts=timed_out,
    )


def record_case(case: str, ledger: Ledger, seconds: float, note: str) -> None:
    """Print the case's figures and add them to ``.local/artifacts/fault_cases.jsonl`` for the docs."""
    figures = {"case": case, **dataclasses.asdict(ledger), "seconds": round(seconds, 1), "note": note}
    print(f"\nFAULT CASE {json.dumps(figures)}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "fault_cases.jsonl").open("a", encoding="utf-8") as artifact:
        artifact.write(json.dumps(figures) + "\n")
