"""Demo users for `make run`: a reproducible cohort across many zones, due around the moment it starts.

The demo sets ``send_local_time`` in ``birthday_settings`` to a few minutes from now (as a UTC time of day),
then gives each demo user the birthday whose send instant in their zone lies nearest to now: users in zones at
UTC+0 are due minutes ahead (released by the hourly DAG's sensors), users east of UTC were due hours ago
(within the late window: sent by the sweep), users west of UTC are due later today.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from birthday_pipeline.rules.calendar import local_instant
from birthday_pipeline.rules.timezones import load_zone

ZONES = [
    "UTC", "Africa/Abidjan", "Atlantic/Reykjavik", "Europe/London", "Europe/Lisbon", "Europe/Paris",
    "Europe/Berlin", "Africa/Cairo", "Europe/Moscow", "Asia/Dubai", "Asia/Kolkata", "Asia/Kathmandu",
    "Asia/Shanghai", "Australia/Eucla", "Asia/Tokyo", "Australia/Lord_Howe", "Australia/Sydney",
    "Pacific/Auckland", "Pacific/Chatham", "Pacific/Kiritimati", "America/St_Johns", "America/Sao_Paulo",
    "America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu", "Etc/GMT+12", None,
]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Zoë", "Li", "Amara", "Søren", "Mei", "José", "Aarav", "Fatima", "Kenji"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "O'Brien", "Wei", "Okafor", "Kierkegaard", "Tanaka", "Silva"]
USERS_PER_ZONE = 8


def demo_send_time(now: datetime, minutes_ahead: int = 3) -> time:
    """The send time of day that puts UTC+0 users a few minutes ahead of ``now``."""
    return (now.astimezone(UTC) + timedelta(minutes=minutes_ahead)).time().replace(second=0, microsecond=0)


def demo_users(now: datetime, send_time: time) -> list[dict[str, Any]]:
    """One cohort, its ids and names fixed by the minute ``now`` falls in (a new cohort each start)."""
    minute = int(now.timestamp()) // 60
    rng = random.Random(minute)
    users = []
    for zone_index, zone in enumerate(ZONES):
        occasion = _nearest_occasion(now, send_time, zone or "UTC")
        for slot in range(USERS_PER_ZONE):
            leap_day = (occasion.month, occasion.day) == (2, 29)
            year = rng.choice([1952, 1972, 1992]) if leap_day else rng.randint(1950, 2010)
            users.append(
                {
                    "id": 10**12 + minute * 1000 + zone_index * USERS_PER_ZONE + slot,
                    "first_name": rng.choice(FIRST_NAMES),
                    "last_name": rng.choice(LAST_NAMES),
                    "birthday": occasion.replace(year=year),
                    "timezone": zone,
                }
            )
    return users


def _nearest_occasion(now: datetime, send_time: time, zone_name: str) -> date:
    zone = load_zone(zone_name)
    today = now.astimezone(zone).date()
    candidates = [today + timedelta(days=shift) for shift in (-1, 0, 1)]
    return min(candidates, key=lambda day: abs(local_instant(day, send_time, zone) - now))

