"""Who is due when: the window a run owns, the notification rows it upserts and the batches it releases.

Planning is set-based. Python computes, from the pinned tz database, a small table of the window's slots
(for each zone: the local date whose send time falls inside the window, the birth month-days celebrated
that day, and the instant); one SQL statement joins it with the users born on those month-days and upserts
their rows. ``plan_user`` states the same rules one user at a time: the reference the SQL is tested against.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from birthday_pipeline.db.connections import dict_cursor
from birthday_pipeline.db.statements import compose, load_sql
from birthday_pipeline.rules.blanks import blank_characters, strip_blanks
from birthday_pipeline.rules.calendar import birth_month_days, celebrated_date, local_dates_around, local_instant
from birthday_pipeline.rules.occasions import BIRTHDAY, Occasion
from birthday_pipeline.rules.timezones import load_zone, zone_names
from birthday_pipeline.settings import Settings
from birthday_pipeline.status import Status



@dataclasses.dataclass(frozen=True)
class Window:
    """A half-open range ``[start, end)`` of send instants, in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a window needs time-zone-aware bounds")
        if self.start >= self.end:
            raise ValueError(f"a window must end after it starts: {self.start} >= {self.end}")

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def hourly_window(anchor: datetime) -> Window:
    """The send instants owned by the hourly run anchored at ``anchor`` (its logical date or run_after).

    The run anchored in hour H owns [H + 1 h, H + 2 h): the window starts after the run itself, so its
    sensors are deferred before the first instant comes.
    """
    hour = anchor.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return Window(hour + timedelta(hours=1), hour + timedelta(hours=2))


@dataclasses.dataclass(frozen=True)
class Slot:
    """In ``zone``, people born on ``birth_month_day`` celebrate on ``occasion_date``, sent at ``send_at``."""

    zone: str
    birth_month_day: int
    occasion_date: date
    send_at: datetime


def window_slots(window: Window, settings: Settings, occasion: Occasion = BIRTHDAY) -> list[Slot]:
    """Every (zone, month-day of the occasion's date) whose send instant lies in ``window``, for every zone."""
    dates = local_dates_around(window.start, window.end)
    local_time, rule = occasion.local_time(settings), occasion.rule(settings)
    slots = []
    for name in sorted(zone_names()):
        zone = load_zone(name)
        for day in dates:
            instant = local_instant(day, local_time, zone)
            if instant in window:
                slots.extend(Slot(name, month_day, day, instant) for month_day in birth_month_days(day, rule))
    return slots


@dataclasses.dataclass(frozen=True)
class User:
    """One row of the users relation as the rules read it. A NULL name is an empty one."""

    id: int
    birthday: date | None
    timezone: str | None
    first_name: str | None = "First"
    last_name: str | None = "Last"
    # The dates of the other occasions, by ``users`` column (``hired_on``, ...); a missing one is NULL.
    other_dates: Mapping[str, date | None] = dataclasses.field(default_factory=dict, hash=False)
    # The opt-out column (the opt_out_column setting) holds true: no occasion of the user's is sent.
    opted_out: bool = False

    def date_for(self, occasion: Occasion) -> date | None:
        """The date ``occasion`` is celebrated from (the birthday, the hire date, ...), or None."""
        if occasion.date_column == "birthday":
            return self.birthday
        return self.other_dates.get(occasion.date_column)


# The longest first or last name a message is sent with: longer text is a data error, not a name.
MAX_NAME_LENGTH = 256
# The most characters of an unknown zone's text a reason repeats: the reason is stored, listed and logged.
MAX_ZONE_SHOWN = 64
# The first date a calendar (and Python) has: PostgreSQL also holds dates before it, BC.
FIRST_DATE = date.min


@dataclasses.dataclass(frozen=True)
class PlannedNotification:
    user_id: int
    occasion_date: date
    send_at: datetime | None
    status: str
    reason: str | None
    occasion: str = BIRTHDAY.name


def planning_zone(timezone: str | None, settings: Settings) -> ZoneInfo:
    """The zone a user's instants are computed in: their own, or the default zone when it is NULL or unknown."""
    return load_zone(timezone if timezone is not None and timezone in zone_names() else settings.default_timezone)


def plan_occasion(
    user: User, year: int, settings: Settings, occasion: Occasion = BIRTHDAY
) -> tuple[datetime, PlannedNotification]:
    """The notification for ``occasion`` ``user`` is owed in ``year``, and the instant that decides its window.

    An unknown zone is planned in the default zone, so that exactly one window records it as invalid. An
    invalid row has no send instant and carries the reason (upsert_notifications.sql applies the same checks
    in the same order). An opted-out user's row is ``cancelled`` and keeps its instant, whatever else is wrong.
    """
    zone = planning_zone(user.timezone, settings)
    source = user.date_for(occasion)
    if source is None:
        raise ValueError(f"user {user.id} has no {occasion.date_column}: no {occasion.name} to plan")
    day = celebrated_date(source, year, occasion.rule(settings))
    instant = local_instant(day, occasion.local_time(settings), zone)
    if user.opted_out:
        return instant, PlannedNotification(user.id, day, instant, Status.CANCELLED, opted_out_reason(settings),
                                            occasion.name)
    reason = invalid_reason(user, day, occasion)
    if reason is None:
        return instant, PlannedNotification(user.id, day, instant, Status.SCHEDULED, None, occasion.name)
    return instant, PlannedNotification(user.id, day, None, Status.INVALID, reason, occasion.name)


def invalid_reason(user: User, occasion_date: date, occasion: Occasion = BIRTHDAY) -> str | None:
    """Why ``user`` cannot be sent a message for ``occasion`` on ``occasion_date``, or None when they can.

    Each reason names the column at fault. A date before year 1 never reaches Python (``database`` reads it as
    NULL); upsert_notifications.sql names it as the reason ``before_first_date_reason`` gives.
    """
    if user.timezone is not None and user.timezone not in zone_names():
        return unknown_zone_reason(user.timezone)
    first_name, last_name = user.first_name or "", user.last_name or ""
    if not strip_blanks(first_name + last_name):
        return "user has no name"
    for column, value in (("first_name", first_name), ("last_name", last_name)):
        if len(value) > MAX_NAME_LENGTH:
            return f"{column} longer than {MAX_NAME_LENGTH} characters"
    source = user.date_for(occasion)
    if source is not None and source >= occasion_date:
        return f"{occasion.date_column} is not in the past"
    return None


def not_unique_reason(versions: int) -> str:
    """The reason for a user whose id has ``versions`` rows that differ in the columns the pipeline reads."""
    return f"id is not unique: the users relation has {versions} different rows for it"


def opted_out_reason(settings: Settings) -> str:
    """The reason of a notification cancelled because its user opted out."""
    return f"user opted out ({settings.opt_out_column} is true)"


def before_first_date_reason(occasion: Occasion) -> str:
    return f"{occasion.date_column} is before year 1"


def unknown_zone_reason(name: str) -> str:
    """The reason for a zone name the tz database does not know (at most ``MAX_ZONE_SHOWN`` characters of it
    repeated), naming the zone it most likely meant."""
    trimmed = strip_blanks(name)
    # Zone names are ASCII; folding only ASCII keeps Python and PostgreSQL's lower() in agreement.
    meant = _zones_by_folded_name().get(trimmed.lower()) if trimmed.isascii() else None
    shown = name[:MAX_ZONE_SHOWN] + ("…" if len(name) > MAX_ZONE_SHOWN else "")
    return f'unknown time zone "{shown}"' + (f'; did you mean "{meant}"?' if meant else "")


@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    return {name.lower(): name for name in zone_names()}


def plan_user(user: User, window: Window, settings: Settings) -> list[PlannedNotification]:
    """The notifications ``user`` is owed in ``window`` for every occasion, by the rules alone (the SQL's reference)."""
    planned = (
        plan_occasion(user, year, settings, occasion)
        for occasion in settings.occasion_registry.values()
        if user.date_for(occasion) is not None
        for year in range(window.start.year - 1, window.end.year + 2)
    )
    return [notification for instant, notification in planned if instant in window]


@dataclasses.dataclass(frozen=True)
class ReleaseBatch:
    """Rows ``first_id..last_id`` due at ``send_at`` (any instant when None): what one send task delivers."""

    send_at: datetime | None
    first_id: int
    last_id: int
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"send_at": self.send_at and self.send_at.isoformat(), "first_id": self.first_id,
                "last_id": self.last_id, "size": self.size}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseBatch:
        send_at = data["send_at"] and datetime.fromisoformat(data["send_at"])
        return cls(send_at, int(data["first_id"]), int(data["last_id"]),
                   int(data["size"]))


@dataclasses.dataclass(frozen=True)
class Upserted:
    """What planning a window changed: rows inserted, the ids of existing rows re-planned (a rule or the user's
    data moved their date or instant, or fixed what made them invalid), and the rows written per occasion and
    status (``scheduled``, ``invalid``, or ``cancelled`` for an opted-out user), which the metrics count."""

    inserted: int
    replanned_ids: list[int]
    by_occasion: dict[str, dict[str, int]]
    # Rows of the users relation with an occasion due in the window but no id (counted once per occasion):
    # no notification can name them, so they are skipped.
    without_id: int = 0

    @property
    def count(self) -> int:
        return self.inserted + len(self.replanned_ids)


@dataclasses.dataclass(frozen=True)
class PlanResult:
    upserted: Upserted
    batches: list[ReleaseBatch]


# Airflow's default [core] max_map_length: a mapped task may expand to at most this many tasks.
AIRFLOW_MAX_MAP_LENGTH = 1024


class TooManyInstants(RuntimeError):
    """A window holds more distinct send instants than the mapped group may have tasks."""


def plan_window(conn: Any, window: Window, settings: Settings,
                max_batches: int = AIRFLOW_MAX_MAP_LENGTH) -> PlanResult:
    """Upsert the window's notification rows of every occasion and return its release batches, in one transaction.

    A batch may hold rows of several occasions due at the same instant: release and delivery treat them alike.
    There are never more than ``max_batches`` (Airflow's ``max_map_length``): where ``batch_size`` would need
    more, every batch of the window holds more rows.
    """
    upserted = upsert_window(conn, window, settings)
    with dict_cursor(conn) as cursor:
        cursor.execute(
            load_sql("plan/release_batches"),
            {"occasions": settings.occasion_registry.names(), "batch_size": settings.batch_size,
             "max_batches": max_batches,
             "window_start": window.start, "window_end": window.end},
        )
        batches = [ReleaseBatch(**row) for row in cursor.fetchall()]
    conn.commit()
    if len(batches) > max_batches:
        # The rows stay planned: the sweep, whose batches span instants, sends them after its grace.
        raise TooManyInstants(
            f"the window [{window.start.isoformat()}, {window.end.isoformat()}) has {len(batches)} release batches "
            f"with one batch per send instant at least, more than [core] max_map_length ({max_batches}) allows: "
            "raise max_map_length; birthday_sweep sends these rows meanwhile"
        )
    return PlanResult(upserted, batches)


def upsert_window(conn: Any, window: Window, settings: Settings) -> Upserted:
    """Upsert the rows of every user with an occasion due in ``window`` (uncommitted); what changed."""
    inserted, replanned_ids, by_occasion, without_id = 0, [], {}, 0
    with dict_cursor(conn) as cursor:
        for occasion in settings.occasion_registry.values():
            cursor.execute(upsert_statement(conn, settings, occasion),
                           _upsert_parameters(window_slots(window, settings, occasion), settings, occasion))
            row = cursor.fetchone()
            inserted += row["inserted"]
            replanned_ids.extend(row["replanned_ids"])
            by_occasion[occasion.name] = {
                status: row[status] for status in (Status.SCHEDULED, Status.INVALID, Status.CANCELLED) if row[status]}
            without_id += row["without_id"]
    return Upserted(inserted, replanned_ids, by_occasion, without_id)


def upsert_statement(conn: Any, settings: Settings, occasion: Occasion) -> str:
    """plan/upsert_notifications.sql for ``occasion``, composed for the users relation of ``settings``."""
    return compose(conn, "plan/upsert_notifications", source_date=[("u", occasion.date_column)],
                   **user_identifiers(settings, versions_of=("r", "id")))


def user_identifiers(settings: Settings, versions_of: tuple[str, str]) -> dict[str, Any]:
    """The identifiers of every statement that reads users, composed from ``settings``: the users relation (u), each
    occasion's date column, the optional locale and opt-out columns (None when not set: NULL), the columns two
    versions of a user may differ in (v), and ``versions_of``, the column holding the id the versions are of."""
    registry = settings.occasion_registry
    optional = [column for column in (settings.locale_column, settings.opt_out_column) if column]
    return {
        "date_columns": [("u", column) for column in registry.date_columns],
        "version_dates": [("v", column) for column in dict.fromkeys([*registry.date_columns, *optional])],
        "versions_of": [versions_of],
        "locale": [("u", settings.locale_column)] if settings.locale_column else None,
        "opt_out": [("u", settings.opt_out_column)] if settings.opt_out_column else None,
        "users": [settings.users_relation.parts],
    }


def _upsert_parameters(slots: list[Slot], settings: Settings, occasion: Occasion) -> dict[str, Any]:
    return {
        "occasion": occasion.name,
        "not_in_past_reason": f"{occasion.date_column} is not in the past",
        "before_first_date_reason": before_first_date_reason(occasion),
        "opted_out_reason": opted_out_reason(settings),
        "first_date": FIRST_DATE,
        "max_zone_shown": MAX_ZONE_SHOWN,
        "default_zone": settings.default_timezone,
        "known_zones": sorted(zone_names()),
        "folded_zones": [name.lower() for name in sorted(zone_names())],
        "max_name_length": MAX_NAME_LENGTH,
        "blanks": blank_characters(),
        "birth_month_days": sorted({slot.birth_month_day for slot in slots}),
        "slot_zones": [slot.zone for slot in slots],
        "slot_birth_month_days": [slot.birth_month_day for slot in slots],
        "slot_occasion_dates": [slot.occasion_date for slot in slots],
        "slot_send_ats": [slot.send_at for slot in slots],
    }

