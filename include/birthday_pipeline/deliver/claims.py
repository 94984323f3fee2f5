"""Claiming: take a batch's due rows under a claim token, and re-check each claimed row against its user.

A claim moves due rows to ``sending`` under a fresh token, in one transaction with the lease that keeps it
alive (``birthday_pipeline.deliver.lease``); every later update of those rows is guarded by the token, so a task
that lost its claim, or a second copy of the same task, cannot overwrite a newer one. The re-check then
holds each claimed row to the rules and the user's data as they are now: a row whose date or instant moved
(a rule changed, the user moved zone or changed the date) is re-planned, one whose user can no longer be
sent a message is marked ``invalid``, one whose date was removed or whose user opted out is ``cancelled``; only
the rest is sent.

A send task claims its batch a little before the instant (``prepare_seconds``); just before the instant it looks
at its rows again (``look_again``), so what changed in between is honoured as if it had been claimed then.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from birthday_pipeline.db.connections import dict_cursor, is_psycopg3
from birthday_pipeline.db.statements import compose, load_sql
from birthday_pipeline.plan.planning import ReleaseBatch, User, not_unique_reason, plan_occasion, user_identifiers
from birthday_pipeline.rules.locales import MAX_TAG_LENGTH
from birthday_pipeline.rules.occasions import Occasions
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status



@dataclasses.dataclass(frozen=True)
class TaskRef:
    """The Airflow task instance sending: named in its lease and in each attempt, so its log can be found."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int


def task_fields(task: TaskRef | None) -> dict[str, Any]:
    """``task`` as the parameters that name it in SQL (all NULL outside a task)."""
    return dataclasses.asdict(task) if task else dict.fromkeys(f.name for f in dataclasses.fields(TaskRef))


# Slots: a send task holds one per row of its batch, so their size is the task's memory per row.
@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    user_id: int
    occasion: str
    occasion_date: date
    send_at: datetime
    webhook_id: uuid.UUID
    attempts: int
    first_name: str
    last_name: str
    timezone: str | None
    dates: tuple[date | None, ...]  # every occasion's date of the user, in ``Occasions.date_columns`` order
    user_versions: int  # how many differing rows the users relation has for the user's id (1 when unique)
    locale: str | None = None  # the locale column's value, as text (None without a locale_column)
    opted_out: bool = False  # the opt-out column holds true

    @classmethod
    def from_claim(cls, row: dict[str, Any], occasions: Occasions) -> ClaimedRow:
        """A row of deliver/claim.sql or resend/claim.sql, read by column name.

        The occasion, the zone and the locale repeat across a batch: one shared string each instead of one per row.
        A locale longer than any language tag is none (its user gets the default text) and is not kept.
        """
        timezone, locale = row["timezone"], row["locale"]
        return cls(row["id"], row["user_id"], occasions.named(row["occasion"]).name, row["occasion_date"],
                   row["send_at"], row["webhook_id"], row["attempts"], row["first_name"], row["last_name"],
                   None if timezone is None else sys.intern(timezone),
                   tuple(row[column] for column in occasions.date_columns), row["user_versions"],
                   None if locale is None or len(locale) > MAX_TAG_LENGTH else sys.intern(locale),
                   row["opted_out"])

    def user(self, occasions: Occasions) -> User:
        dates = occasions.source_dates(self.dates)
        return User(self.user_id, dates.get("birthday"), self.timezone, self.first_name, self.last_name,
                    other_dates=dates, opted_out=self.opted_out)



@dataclasses.dataclass(frozen=True)
class Claim:
    """Rows claimed under ``token``; ``lease_opened_at`` is ``time.monotonic()`` just before the lease opened, and
    ``seconds`` how long the claim took (reading the rows again takes about as long)."""

    token: uuid.UUID
    rows: list[ClaimedRow]
    lease_opened_at: float
    seconds: float


def open_lease(conn: Any, token: uuid.UUID, lease_seconds: int, task: TaskRef | None) -> None:
    """Open the lease of claim ``token`` (``birthday_pipeline.deliver.lease``) in the open transaction of its claim."""
    with conn.cursor() as cursor:
        cursor.execute(load_sql("deliver/open_lease"),
                       {**task_fields(task), "claim_token": str(token), "lease_seconds": lease_seconds})


def claim_batch(conn: Any, batch: ReleaseBatch, settings: Settings, now: datetime, grace: timedelta,
                task: TaskRef | None, limit: int | None = None) -> Claim:
    """Claim the rows of ``batch`` due at ``now`` under a new token and lease, in the open transaction.

    A scheduled row is claimed only once its instant is ``grace`` old: the sweep leaves healthy hourly releases
    a head start. At most ``limit`` rows are taken (None: all). The caller commits, after handing back what the
    re-check rejects.
    """
    parameters = {**due_parameters(settings, now, grace), "first_id": batch.first_id, "last_id": batch.last_id,
                  "send_at": batch.send_at, "claim_limit": limit}
    return claim_rows(conn, "deliver/claim", parameters, settings, task)


def claim_rows(conn: Any, statement_name: str, parameters: dict[str, Any], settings: Settings,
               task: TaskRef | None) -> Claim:
    """Run the claim statement ``statement_name`` under a new token and a new lease, in the open transaction.

    The statement sets ``claim_token`` on the rows it takes and returns the columns of ``ClaimedRow``.
    """
    token = uuid.uuid4()
    lease_opened_at = time.monotonic()
    open_lease(conn, token, settings.lease_seconds, task)
    rows = _claimed_rows(conn, statement_name, {**parameters, "claim_token": str(token)}, settings)
    return Claim(token, rows, lease_opened_at, time.monotonic() - lease_opened_at)


def _claimed_rows(conn: Any, statement_name: str, parameters: dict[str, Any], settings: Settings) -> list[ClaimedRow]:
    """The rows statement ``statement_name`` returns in the columns of shared/claimed_row.sql."""
    statement = compose(conn, statement_name, **user_identifiers(settings, versions_of=("n", "user_id")))
    occasions = settings.occasion_registry
    with dict_cursor(conn) as cursor:
        return [ClaimedRow.from_claim(row, occasions) for row in _rows_of(cursor, statement, parameters)]


def _rows_of(cursor: Any, statement: str, parameters: dict) -> Iterator[dict[str, Any]]:
    """The rows ``statement`` returns, one at a time where the driver can stream them.

    psycopg 3 (PostgresHook's driver) streams, so the whole raw result never sits in memory beside the
    objects built from it; psycopg2 fetches the result at once.
    """
    if is_psycopg3(cursor):
        yield from cursor.stream(statement, parameters)
    else:
        cursor.execute(statement, parameters)
        yield from cursor


def due_parameters(settings: Settings, now: datetime, grace: timedelta) -> dict:
    """The parameters of the conditions that make a row due at ``now`` (shared with the sweep).

    ``now`` is the caller's clock, which also guards each send against earliness; whether a lease is still
    alive is decided by the database's clock in the SQL itself.
    """
    return {
        "occasions": settings.occasion_registry.names(),
        "now": now,
        "scheduled_due_by": now - grace,
        "max_lateness": timedelta(hours=settings.max_lateness_hours),
        "max_attempts": settings.max_attempts,
    }


@dataclasses.dataclass(frozen=True)
class Release:
    """A claimed row handed back unsent: its (re-planned) date and instant, its new status and why."""

    id: int
    occasion_date: date
    send_at: datetime | None
    status: str
    reason: str | None


def recheck(claimed: list[ClaimedRow], settings: Settings,
            honour_opt_out: bool = True) -> tuple[list[ClaimedRow], list[Release]]:
    """Split claimed rows into those still due as planned and those to hand back.

    A row keeps its webhook-id wherever it moves, so a receiver that saw an earlier attempt de-duplicates it.
    The new date always lies in the row's year: it is that year's notification, re-planned. An opted-out user's
    row is cancelled, unless ``honour_opt_out`` is off (a forced resend).
    """
    occasions = settings.occasion_registry
    to_send, to_release = [], []
    for row in claimed:
        occasion = occasions.named(row.occasion)
        user = row.user(occasions)
        if not honour_opt_out:
            user = dataclasses.replace(user, opted_out=False)
        if row.user_versions > 1:
            to_release.append(Release(row.id, row.occasion_date, None, Status.INVALID,
                                      not_unique_reason(row.user_versions)))
            continue
        if user.date_for(occasion) is None:
            to_release.append(Release(row.id, row.occasion_date, row.send_at, Status.CANCELLED,
                                      f"{occasion.date_column} removed after planning"))
            continue
        _, planned = plan_occasion(user, row.occasion_date.year, settings, occasion)
        if planned.status in (Status.INVALID, Status.CANCELLED):
            to_release.append(Release(row.id, planned.occasion_date, planned.send_at, planned.status,
                                      planned.reason))
        elif (planned.occasion_date, planned.send_at) != (row.occasion_date, row.send_at):
            to_release.append(Release(row.id, planned.occasion_date, planned.send_at, Status.SCHEDULED, None))
        else:
            to_send.append(row)
    return to_send, to_release


def look_again(conn: Any, token: uuid.UUID, claimed: list[ClaimedRow], settings: Settings,
               honour_opt_out: bool = True) -> tuple[dict[int, ClaimedRow], list[Release]]:
    """Read ``claimed`` again as the claim read them and re-check those that changed, in the open transaction.

    Returns the rows that changed but are still to be sent, by id (their message is rendered again), and those to
    hand back: re-planned, invalid or cancelled as ``recheck`` decides, and cancelled where the user no longer
    exists (as the sweep's ``cancel_orphans`` would). A row this claim no longer holds is handed back too; the
    claim token guards it, so that changes nothing.
    """
    now = {row.id: row for row in _claimed_rows(conn, "deliver/look_again",
                                                {"ids": [row.id for row in claimed], "claim_token": str(token)},
                                                settings)}
    changed = [now[row.id] for row in claimed if row.id in now and now[row.id] != row]
    to_send, to_release = recheck(changed, settings, honour_opt_out)
    to_release += [Release(row.id, row.occasion_date, row.send_at, Status.CANCELLED, "user no longer exists")
                   for row in claimed if row.id not in now]
    return {row.id: row for row in to_send}, to_release


def release(conn: Any, token: uuid.UUID, to_release: list[Release]) -> None:
    """Hand ``to_release`` back to planning under the claim's token (in the open transaction)."""
    if not to_release:
        return
    with conn.cursor() as cursor:
        cursor.execute(load_sql("deliver/release_claims"), {
            "ids": [row.id for row in to_release],
            "occasion_dates": [row.occasion_date for row in to_release],
            "send_ats": [row.send_at for row in to_release],
            "statuses": [row.status for row in to_release],
            "reasons": [row.reason for row in to_release],
            "claim_token": str(token),
        })
