"""The one time-zone database all our time maths uses: the pinned `tzdata` package, and the zone names we accept.

The machine's own zoneinfo files and PostgreSQL's built-in copy are older and disagree with the current
rules (America/Asuncion, America/Coyhaique, ...), so zones are always loaded from the `tzdata` package,
never from the system path, and PostgreSQL's ``AT TIME ZONE`` is never used with a user's zone.

A zone name is a name of the tz database or a Rails (``ActiveSupport::TimeZone``) name, which stands for the
IANA zone Rails maps it to (``rails_zones``). Every judgement of a zone goes through ``zone_names`` and
``load_zone``, so Python's rules and the SQL they hand these names to accept the same names.
"""

from __future__ import annotations

import functools
from importlib import resources
from zoneinfo import ZoneInfo

import tzdata

from birthday_pipeline.rules.rails_zones import RAILS_ZONES


class UnknownTimeZoneError(ValueError):
    """A name that is not a zone of the pinned tz database (bare abbreviations such as PST included)."""


IANA_VERSION: str = tzdata.IANA_VERSION


@functools.cache
def tz_database_names() -> frozenset[str]:
    """Every zone name of the pinned tz database, canonical zones and backward-compatible links."""
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(listing.split())


@functools.cache
def zone_names() -> frozenset[str]:
    """Every zone name the pipeline accepts: the tz database's and Rails' (two names, UTC and Singapore, are both,
    for the same zone)."""
    return tz_database_names() | frozenset(RAILS_ZONES)


def iana_name(name: str) -> str:
    """The tz database's name for an accepted zone name: a Rails name's IANA zone, any other name itself."""
    return name if name in tz_database_names() else RAILS_ZONES.get(name, name)


@functools.cache
def load_zone(name: str) -> ZoneInfo:
    """Load the zone ``name`` stands for from the pinned tz database, whatever the machine has installed.

    A Rails name loads its IANA zone (whose key is the IANA name).
    """
    if name not in zone_names():
        raise UnknownTimeZoneError(f"unknown time zone {name!r} (tz database {IANA_VERSION} or Rails)")
    key = iana_name(name)
    path = resources.files("tzdata").joinpath("zoneinfo", *key.split("/"))
    with path.open("rb") as zone_file:
        return ZoneInfo.from_file(zone_file, key=key)
