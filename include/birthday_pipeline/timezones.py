"""The one time-zone database all our time maths uses: the pinned `tzdata` package.

The machine's own zoneinfo files and PostgreSQL's built-in copy are older and disagree with the current
rules (America/Asuncion, America/Coyhaique, ...), so zones are always loaded from the `tzdata` package,
never from the system path, and PostgreSQL's ``AT TIME ZONE`` is never used with a user's zone.
"""

from __future__ import annotations

import functools
from importlib import resources
from zoneinfo import ZoneInfo

import tzdata


class UnknownTimeZoneError(ValueError):
    """A name that is not a zone of the pinned tz database (bare abbreviations such as PST included)."""


IANA_VERSION: str = tzdata.IANA_VERSION


@functools.cache
def zone_names() -> frozenset[str]:
    """Every zone name of the pinned tz database, canonical zones and backward-compatible links."""
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(listing.split())


@functools.cache
def load_zone(name: str) -> ZoneInfo:
    """Load ``name`` from the pinned tz database, whatever the machine has installed."""
    if name not in zone_names():
        raise UnknownTimeZoneError(f"unknown time zone {name!r} (tz database {IANA_VERSION})")
    path = resources.files("tzdata").joinpath("zoneinfo", *name.split("/"))
    with path.open("rb") as zone_file:
        return ZoneInfo.from_file(zone_file, key=name)
