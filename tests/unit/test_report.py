"""The closing summary of a run (one line per occasion, counts only) and the local hours of a day in a zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

from birthday_pipeline.operate.report import Day, summary_lines
from birthday_pipeline.plan.planning import Window
from birthday_pipeline.rules.timezones import load_zone


def test_one_summary_line_per_occasion_with_the_counts_that_are_not_zero() -> None:
    window = Window(datetime(2026, 3, 10, 9, tzinfo=UTC), datetime(2026, 3, 10, 10, tzinfo=UTC))
    counts = {"birthday": {"scheduled": 0, "sent": 118, "failed": 2}, "work_anniversary": {"sent": 0}}
    assert summary_lines("hourly", window, counts) == [
        "Summary hourly birthday [2026-03-10T09:00:00+00:00, 2026-03-10T10:00:00+00:00): 120 due; sent 118, failed 2",
        "Summary hourly work_anniversary [2026-03-10T09:00:00+00:00, 2026-03-10T10:00:00+00:00): 0 due",
    ]


def hours_of(day: date, zone: str) -> list[str]:
    found = Day.of(day, load_zone(zone))
    return [instant.astimezone(found.zone).strftime("%H:%M%z") for instant in found.hour_starts]


def test_a_day_in_a_zone_has_its_real_local_hours() -> None:
    berlin = Day.of(date(2026, 3, 29), load_zone("Europe/Berlin"))
    assert (berlin.start, berlin.end) == (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))
    # Spring forward: 02:00 is skipped. Fall back: 02:00 comes twice, once in summer time, once in winter time.
    assert hours_of(date(2026, 3, 29), "Europe/Berlin")[1:4] == ["01:00+0100", "03:00+0200", "04:00+0200"]
    autumn = hours_of(date(2026, 10, 25), "Europe/Berlin")
    assert len(autumn) == 25 and autumn[2:4] == ["02:00+0200", "02:00+0100"]
    # Quarter-hour offsets; and Lord Howe's half-hour DST shift, 02:00 to 02:30: no local hour starts at 02:00,
    # so the 01:00 hour lasts until 03:00 (an hour and a half) and the day has 23 hour starts.
    assert hours_of(date(2026, 7, 1), "Asia/Kathmandu")[:2] == ["00:00+0545", "01:00+0545"]
    lord_howe = hours_of(date(2026, 10, 4), "Australia/Lord_Howe")
    assert len(lord_howe) == 23 and lord_howe[1:3] == ["01:00+1030", "03:00+1100"]
