"""Rails zone names (``ActiveSupport::TimeZone``) are accepted wherever a zone is, as the IANA zone Rails maps them
to."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from birthday_pipeline.plan.planning import User, Window, invalid_reason, plan_user, planning_zone
from birthday_pipeline.rules.calendar import local_instant
from birthday_pipeline.rules.rails_zones import RAILS_ZONES
from birthday_pipeline.rules.timezones import iana_name, load_zone, tz_database_names, zone_names
from birthday_pipeline.settings import Settings


def test_every_rails_name_is_a_zone_of_the_pinned_tz_database() -> None:
    assert len(RAILS_ZONES) == 152
    assert set(RAILS_ZONES.values()) <= tz_database_names()
    assert set(RAILS_ZONES) <= zone_names()
    for name, zone in RAILS_ZONES.items():
        if name not in tz_database_names():  # UTC and Singapore are IANA names too (see below)
            assert load_zone(name).key == zone == iana_name(name), name


@pytest.mark.parametrize(
    ("rails", "day", "instant"),
    [
        ("Eastern Time (US & Canada)", date(2026, 7, 1), datetime(2026, 7, 1, 13, tzinfo=UTC)),  # EDT, UTC-4
        ("Eastern Time (US & Canada)", date(2026, 12, 15), datetime(2026, 12, 15, 14, tzinfo=UTC)),  # EST, UTC-5
        ("Chennai", date(2026, 3, 10), datetime(2026, 3, 10, 3, 30, tzinfo=UTC)),  # UTC+5:30
        ("Kathmandu", date(2026, 3, 10), datetime(2026, 3, 10, 3, 15, tzinfo=UTC)),  # UTC+5:45
        ("Chatham Is.", date(2026, 1, 10), datetime(2026, 1, 9, 19, 15, tzinfo=UTC)),  # UTC+13:45 in summer
        ("International Date Line West", date(2026, 3, 10), datetime(2026, 3, 10, 21, tzinfo=UTC)),  # UTC-12
        ("Samoa", date(2026, 3, 10), datetime(2026, 3, 9, 20, tzinfo=UTC)),  # Pacific/Apia, UTC+13
        ("Astana", date(2026, 3, 10), datetime(2026, 3, 10, 4, tzinfo=UTC)),  # Asia/Almaty, UTC+5 since 2024
    ],
)
def test_a_rails_name_sends_at_nine_in_its_zone(rails: str, day: date, instant: datetime) -> None:
    assert local_instant(day, time(9), load_zone(rails)) == instant
    user = User(1, day.replace(year=1990), rails)
    [planned] = plan_user(user, Window(instant, instant.replace(minute=59)), Settings())
    assert (planned.status, planned.send_at, planned.occasion_date) == ("scheduled", instant, day)


def test_names_both_rails_and_iana_stand_for_the_same_zone() -> None:
    both = set(RAILS_ZONES) & tz_database_names()
    assert both == {"UTC", "Singapore"}
    for name in both:
        assert load_zone(name).utcoffset(datetime(2026, 1, 1)) == load_zone(RAILS_ZONES[name]).utcoffset(
            datetime(2026, 1, 1))


def test_a_mangled_rails_name_is_invalid_and_names_the_zone_it_meant() -> None:
    # The SQL looks the folded name up in one subquery: one name per folded form.
    assert len({name.lower() for name in zone_names()}) == len(zone_names())
    user = User(1, date(1990, 1, 1), " eastern time (us & canada) ")
    assert invalid_reason(user, date(2026, 1, 1)) == (
        'unknown time zone " eastern time (us & canada) "; did you mean "Eastern Time (US & Canada)"?')
    assert invalid_reason(User(1, date(1990, 1, 1), "Eastern Time"), date(2026, 1, 1)) == (
        'unknown time zone "Eastern Time"')


def test_the_default_zone_may_be_a_rails_name() -> None:
    settings = Settings.from_variable_text('{"default_timezone": "Mountain Time (US & Canada)"}')
    assert planning_zone(None, settings).key == "America/Denver"
