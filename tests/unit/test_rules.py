"""The time rules with fixed dates: zones at the edges of the map, DST both ways, 29 February."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from birthday_pipeline.rules.calendar import (
    Feb29Rule,
    birth_month_days,
    celebrated_date,
    local_dates_around,
    local_instant,
)
from birthday_pipeline.rules.timezones import UnknownTimeZoneError, load_zone, zone_names

NINE = time(9, 0)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def send_instant(birthday: date, year: int, zone: str, rule: Feb29Rule = Feb29Rule.FEB28) -> datetime:
    return local_instant(celebrated_date(birthday, year, rule), NINE, load_zone(zone))


@pytest.mark.parametrize(
    ("birthday", "year", "zone", "expected"),
    [
        (date(1985, 12, 15), 2026, "Australia/Melbourne", utc(2026, 12, 14, 22)),
        (date(1985, 12, 15), 2026, "America/New_York", utc(2026, 12, 15, 14)),
        (date(1990, 3, 8), 2026, "America/New_York", utc(2026, 3, 8, 13)),  # first day of EDT
        (date(1990, 11, 1), 2026, "America/New_York", utc(2026, 11, 1, 14)),  # first day back on EST
        (date(2000, 2, 29), 2025, "Australia/Melbourne", utc(2025, 2, 27, 22)),
        (date(2000, 2, 29), 2028, "Australia/Melbourne", utc(2028, 2, 28, 22)),
        (date(1970, 12, 31), 2026, "Pacific/Kiritimati", utc(2026, 12, 30, 19)),  # UTC+14
        (date(1970, 12, 31), 2026, "Etc/GMT+12", utc(2026, 12, 31, 21)),  # UTC-12
        (date(1970, 6, 1), 2026, "Asia/Kolkata", utc(2026, 6, 1, 3, 30)),
        (date(1970, 6, 1), 2026, "Asia/Kathmandu", utc(2026, 6, 1, 3, 15)),
        (date(1970, 6, 1), 2026, "Australia/Eucla", utc(2026, 6, 1, 0, 15)),
        (date(1970, 6, 1), 2026, "Pacific/Chatham", utc(2026, 5, 31, 20, 15)),  # +12:45 in winter
        (date(1970, 1, 1), 2026, "Pacific/Chatham", utc(2025, 12, 31, 19, 15)),  # +13:45 in summer
        (date(1970, 6, 1), 2026, "Australia/Lord_Howe", utc(2026, 5, 31, 22, 30)),  # +10:30
        (date(1970, 1, 1), 2026, "Australia/Lord_Howe", utc(2025, 12, 31, 22)),  # +11, a 30-minute DST
        # Permanent UTC-3 since October 2024; PostgreSQL's older tz copy says 13:00Z.
        (date(1970, 6, 15), 2026, "America/Asuncion", utc(2026, 6, 15, 12)),
        (date(1970, 6, 15), 2026, "America/Coyhaique", utc(2026, 6, 15, 12)),
    ],
)
def test_send_instant(birthday: date, year: int, zone: str, expected: datetime) -> None:
    assert send_instant(birthday, year, zone) == expected


@pytest.mark.parametrize(
    ("year", "rule", "expected"),
    [
        (2025, Feb29Rule.FEB28, date(2025, 2, 28)),
        (2025, Feb29Rule.MAR1, date(2025, 3, 1)),
        (2024, Feb29Rule.FEB28, date(2024, 2, 29)),
        (2024, Feb29Rule.MAR1, date(2024, 2, 29)),
        (2100, Feb29Rule.MAR1, date(2100, 3, 1)),  # divisible by 100, not by 400: no 29 February
    ],
)
def test_feb29_birthday_is_celebrated_by_the_rule(year: int, rule: Feb29Rule, expected: date) -> None:
    assert celebrated_date(date(2000, 2, 29), year, rule) == expected


def test_mar1_rule_sends_on_1_march_in_the_users_zone() -> None:
    assert send_instant(date(2000, 2, 29), 2025, "Australia/Melbourne", Feb29Rule.MAR1) == utc(2025, 2, 28, 22)


@pytest.mark.parametrize(
    ("occasion_date", "rule", "expected"),
    [
        (date(2025, 2, 28), Feb29Rule.FEB28, (228, 229)),
        (date(2025, 2, 28), Feb29Rule.MAR1, (228,)),
        (date(2025, 3, 1), Feb29Rule.MAR1, (301, 229)),
        (date(2025, 3, 1), Feb29Rule.FEB28, (301,)),
        (date(2024, 2, 28), Feb29Rule.FEB28, (228,)),
        (date(2024, 2, 29), Feb29Rule.MAR1, (229,)),
        (date(2026, 12, 15), Feb29Rule.FEB28, (1215,)),
    ],
)
def test_birth_month_days_celebrated_on_a_date(occasion_date: date, rule: Feb29Rule, expected: tuple) -> None:
    assert birth_month_days(occasion_date, rule) == expected


def test_missing_local_time_moves_forward_to_the_end_of_the_gap() -> None:
    # New York skips 02:00-03:00 on 2026-03-08; the first valid instant is 03:00 EDT.
    assert local_instant(date(2026, 3, 8), time(2, 30), load_zone("America/New_York")) == utc(2026, 3, 8, 7)
    # Lord Howe skips 02:00-02:30 on 2026-10-04; the first valid instant is 02:30 (+11).
    assert local_instant(date(2026, 10, 4), time(2, 15), load_zone("Australia/Lord_Howe")) == utc(2026, 10, 3, 15, 30)
    # Samoa skipped 30 December 2011 entirely; its 09:00 becomes the first instant of 31 December.
    assert local_instant(date(2011, 12, 30), NINE, load_zone("Pacific/Apia")) == utc(2011, 12, 30, 10)


def test_ambiguous_local_time_takes_the_earlier_instant() -> None:
    # New York repeats 01:00-02:00 on 2026-11-01: 01:30 EDT (05:30Z) comes before 01:30 EST (06:30Z).
    assert local_instant(date(2026, 11, 1), time(1, 30), load_zone("America/New_York")) == utc(2026, 11, 1, 5, 30)
    # Lord Howe repeats 01:30-02:00 on 2026-04-05: 01:45 at +11 comes first.
    assert local_instant(date(2026, 4, 5), time(1, 45), load_zone("Australia/Lord_Howe")) == utc(2026, 4, 4, 14, 45)


@pytest.mark.parametrize("name", ["PST", "CEST", "Mars/Olympus_Mons", "america/new_york", " UTC", ""])
def test_names_outside_the_tz_database_are_unknown(name: str) -> None:
    with pytest.raises(UnknownTimeZoneError, match="unknown time zone"):
        load_zone(name)


def test_zones_come_from_the_pinned_tzdata_package() -> None:
    import tzdata

    names = zone_names()
    assert {"America/Coyhaique", "US/Eastern", "Etc/GMT+12", "UTC"} <= names
    assert load_zone("America/Coyhaique").key == "America/Coyhaique"
    pinned = {
        line.split("==")[0].lower(): line.split("==")[1].strip()
        for line in open("requirements.txt", encoding="utf-8")
        if "==" in line and not line.startswith("#")
    }
    assert pinned["tzdata"] == tzdata.__version__


def test_local_dates_around_cover_two_days_either_side() -> None:
    dates = local_dates_around(utc(2026, 12, 31, 23), utc(2027, 1, 1, 1))
    assert dates[0] == date(2026, 12, 29) and dates[-1] == date(2027, 1, 3)
    assert len(dates) == len(set(dates)) == 6
