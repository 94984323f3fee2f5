"""Synthetic users: a seeded generator with a realistic mix of zones, loaded with COPY.

The same seed gives the same users on every machine. Zones are weighted roughly by where internet users
live, so the busiest UTC hour of 09:00 local is a real one (East and South Asia), with a few users without
a zone and a few with an unknown one, as real data has.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from birthday_pipeline.plan.planning import Window, window_slots
from birthday_pipeline.settings import Settings

SEED = 20261215
# Zone (None: no zone set) and its share of users, in per mille.
ZONE_MIX: dict[str | None, float] = {
    "Asia/Shanghai": 180, "Asia/Kolkata": 170, "America/New_York": 45, "America/Chicago": 25,
    "America/Denver": 8, "America/Los_Angeles": 35, "America/Sao_Paulo": 40, "America/Mexico_City": 30,
    "America/Bogota": 12, "America/Argentina/Buenos_Aires": 12, "America/St_Johns": 1, "Europe/London": 20,
    "Europe/Berlin": 25, "Europe/Paris": 20, "Europe/Madrid": 12, "Europe/Rome": 12, "Europe/Moscow": 30,
    "Europe/Istanbul": 20, "Africa/Lagos": 40, "Africa/Cairo": 25, "Africa/Nairobi": 12,
    "Africa/Johannesburg": 10, "Asia/Tehran": 20, "Asia/Karachi": 40, "Asia/Dhaka": 35, "Asia/Kathmandu": 5,
    "Asia/Jakarta": 50, "Asia/Manila": 25, "Asia/Ho_Chi_Minh": 20, "Asia/Tokyo": 25, "Asia/Seoul": 12,
    "Australia/Sydney": 6, "Australia/Adelaide": 1, "Pacific/Auckland": 2, "Pacific/Honolulu": 1,
    "US/Eastern": 3, None: 5, "PST": 1,
}
FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret",
               "Linus", "Sophie", "Yukihiro", "Guido", "Anita", "Niklaus", "Karen", "John", "Hedy"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman",
              "Berners-Lee", "Hamilton", "Torvalds", "Wilson", "Matsumoto", "van Rossum", "Borg", "Wirth",
              "Spärck Jones", "McCarthy", "Lamarr"]
FIRST_BIRTHDAY = date(1950, 1, 1)
LAST_BIRTHDAY = date(2007, 12, 31)
# The day whose busiest hour is planned: fixed, so every run plans the same window.
BENCH_DAY = date(2026, 12, 15)


def generate(first_id: int, count: int, seed: int = SEED, chunk: int = 200_000) -> Iterator[str]:
    """Tab-separated ``users`` rows (id, first_name, last_name, birthday, timezone) in chunks of text.

    Each chunk has its own seed derived from the run's seed and its first id, so loading in steps (1 M,
    then 9 M more) gives the same users as loading 10 M at once.
    """
    days = [(FIRST_BIRTHDAY + timedelta(days=n)).isoformat() for n in range((LAST_BIRTHDAY - FIRST_BIRTHDAY).days + 1)]
    zones = [r"\N" if zone is None else zone for zone in ZONE_MIX]
    weights = list(ZONE_MIX.values())
    for start in range(first_id, first_id + count, chunk):
        size = min(chunk, first_id + count - start)
        rng = random.Random(f"{seed}:{start}")
        firsts = rng.choices(FIRST_NAMES, k=size)
        lasts = rng.choices(LAST_NAMES, k=size)
        birthdays = rng.choices(days, k=size)
        chosen_zones = rng.choices(zones, weights, k=size)
        yield "".join(
            f"{user_id}\t{first}\t{last}\t{birthday}\t{zone}\n"
            for user_id, first, last, birthday, zone in zip(
                range(start, start + size), firsts, lasts, birthdays, chosen_zones, strict=True
            )
        )


def copy_users(conn: Any, first_id: int, count: int) -> None:
    """Load ``count`` generated users from ``first_id`` on with COPY, in one transaction."""
    with conn.cursor() as cursor:
        for text in generate(first_id, count):
            cursor.copy_expert(
                "COPY users (id, first_name, last_name, birthday, timezone) FROM STDIN", io.StringIO(text)
            )
    conn.commit()


def busiest_window(settings: Settings, day: date = BENCH_DAY) -> tuple[Window, float]:
    """The UTC hour of ``day`` in which 09:00 local comes for the largest share of users, and that share."""
    best: tuple[Window, float] | None = None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    total = sum(ZONE_MIX.values())
    for hour in range(24):
        window = Window(start + timedelta(hours=hour), start + timedelta(hours=hour + 1))
        zones = {slot.zone for slot in window_slots(window, settings)}
        share = sum(weight for zone, weight in ZONE_MIX.items() if (zone or settings.default_timezone) in zones)
        if best is None or share > best[1]:
            best = (window, share)
    assert best is not None
    return best[0], best[1] / total
