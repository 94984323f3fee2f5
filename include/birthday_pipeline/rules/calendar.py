"""The time rules: which local date a birthday is celebrated on, and the UTC instant of its send.

These functions are the reference the planner's set-based SQL is tested against; planning itself uses them
to build the per-window table of zone -> instant that the SQL joins (see ``planning``).
"""

from __future__ import annotations

import calendar
import enum
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class Feb29Rule(enum.StrEnum):
    """Where a 29 February birthday falls in a year without that day."""

    FEB28 = "feb28"
    MAR1 = "mar1"


def celebrated_date(birthday: date, year: int, feb29_rule: Feb29Rule) -> date:
    """The local calendar date on which ``birthday`` is celebrated in ``year``."""
    if (birthday.month, birthday.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28) if feb29_rule is Feb29Rule.FEB28 else date(year, 3, 1)
    return birthday.replace(year=year)


def birth_month_days(occasion_date: date, feb29_rule: Feb29Rule) -> tuple[int, ...]:
    """The birth month-days (encoded ``month * 100 + day``) celebrated on ``occasion_date``."""
    month_day = occasion_date.month * 100 + occasion_date.day
    if not calendar.isleap(occasion_date.year):
        if (feb29_rule is Feb29Rule.FEB28 and month_day == 228) or (
            feb29_rule is Feb29Rule.MAR1 and month_day == 301
        ):
            return (month_day, 229)
    return (month_day,)


def local_instant(day: date, local_time: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which clocks in ``zone`` show ``local_time`` on ``day``.

    An ambiguous local time (clocks turned back) takes the earlier instant. A local time that does not
    exist (clocks jumped over it) moves forward to the first instant that exists, the end of the gap.
    """
    wall = datetime.combine(day, local_time, tzinfo=zone)
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    return _end_of_gap(wall, zone)


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant that ends the gap ``wall`` falls in.

    PEP 495 maps a wall time inside a gap with the offset before the transition (fold=0) and after it
    (fold=1); the transition lies between those two instants, at a whole second.
    """
    bounds = sorted(wall.replace(fold=fold).astimezone(UTC) for fold in (0, 1))
    before, after = int(bounds[0].timestamp()), int(bounds[1].timestamp())
    offset_after = datetime.fromtimestamp(after, zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def local_dates_around(start: datetime, end: datetime) -> list[date]:
    """Every calendar date that can hold a local time whose instant lies in ``[start, end)``.

    Offsets reach +-14 h and a skipped calendar day (Pacific/Apia, 2011) moves an instant a day further,
    so two days either side cover every zone.
    """
    first = (start - timedelta(days=2)).date()
    count = (end + timedelta(days=2)).date().toordinal() - first.toordinal() + 1
    return [first + timedelta(days=offset) for offset in range(count)]
