"""The occasions the pipeline sends messages for: the one place an occasion is declared.

An occasion names the ``users`` column that holds its date, the local time of day its message is sent, the
message template and where a 29 February date falls in other years. Planning, release, the sweep and the
resend DAG all read this registry; nothing else names an occasion. Adding one is an entry in ``OCCASIONS``
plus a migration that adds its column (and its month-day index) to ``users``; see the README.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date, time
from typing import TYPE_CHECKING

from birthday_pipeline.rules.calendar import Feb29Rule

if TYPE_CHECKING:
    from birthday_pipeline.settings import Settings


@dataclasses.dataclass(frozen=True)
class Occasion:
    """One kind of message: its name, its date column, its local send time, its text and its 29 February rule.

    ``send_local_time`` and ``feb29_rule`` left at None follow the pipeline's settings
    (``send_local_time``, ``feb29_rule``).
    """

    name: str
    date_column: str
    message: str  # ``{name}`` is replaced by the user's first and last name
    send_local_time: time | None = None
    feb29_rule: Feb29Rule | None = None

    def local_time(self, settings: Settings) -> time:
        return self.send_local_time or settings.send_local_time

    def rule(self, settings: Settings) -> Feb29Rule:
        return self.feb29_rule or settings.feb29_rule


BIRTHDAY = Occasion(name="birthday", date_column="birthday", message="Hey, {name} it's your birthday")
WORK_ANNIVERSARY = Occasion(
    name="work_anniversary", date_column="hired_on", message="Hey, {name} happy work anniversary"
)

OCCASIONS: dict[str, Occasion] = {occasion.name: occasion for occasion in (BIRTHDAY, WORK_ANNIVERSARY)}


def occasion_named(name: str) -> Occasion:
    """The registered occasion ``name``; a name not in the registry is an error that lists the known ones."""
    try:
        return OCCASIONS[name]
    except KeyError:
        raise ValueError(f"unknown occasion {name!r}; known: {', '.join(OCCASIONS)}") from None


def occasion_names() -> list[str]:
    return list(OCCASIONS)


@functools.cache
def date_columns() -> tuple[str, ...]:
    """Every ``users`` column some occasion reads, in registry order, each once (the registry is fixed at
    import; a send task asks for every claimed row)."""
    return tuple(dict.fromkeys(occasion.date_column for occasion in OCCASIONS.values()))


def source_dates(values: tuple | list) -> dict[str, date | None]:
    """The dates returned for ``date_column_list`` keyed by column."""
    return dict(zip(date_columns(), values, strict=True))
