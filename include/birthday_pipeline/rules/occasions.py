"""The occasions the pipeline sends messages for, as the settings declare them: the registry every part reads.

An occasion names the users column that holds its date, the local time of day its message is sent, where a
29 February date falls in other years, its message templates (a default and one per language tag) and,
optionally, the payload shape its requests carry. Without configuration the registry is the two built-in
occasions, ``birthday`` and ``work_anniversary``, with their built-in texts. The setting ``occasions``
(``birthday_pipeline.settings``) changes a built-in, turns it off or adds one; adding one also needs its date
column in the users relation and that column's month-day index (README, "Customise").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import date, time
from typing import TYPE_CHECKING

from birthday_pipeline.rules.calendar import Feb29Rule
from birthday_pipeline.rules.locales import fallback_keys
from birthday_pipeline.rules.templates import Template

if TYPE_CHECKING:
    from birthday_pipeline.rules.payloads import Payload
    from birthday_pipeline.settings import Settings

# The placeholders every message template may use, from the user row and the notification.
MESSAGE_PLACEHOLDERS = frozenset({"first_name", "last_name", "name", "occasion", "occasion_date", "year", "years"})
# ``age`` only where the occasion's date is a birth date.
BIRTH_DATE_COLUMN = "birthday"


def message_placeholders(date_column: str) -> frozenset[str]:
    """The placeholders a message of an occasion read from ``date_column`` may use."""
    return MESSAGE_PLACEHOLDERS | {"age"} if date_column == BIRTH_DATE_COLUMN else MESSAGE_PLACEHOLDERS


# The built-in occasions' texts: what every message said before texts were configuration, byte for byte.
BIRTHDAY_MESSAGE = "Hey, {name} it's your birthday"
WORK_ANNIVERSARY_MESSAGE = "Hey, {name} happy work anniversary"


@dataclasses.dataclass(frozen=True)
class Occasion:
    """One kind of message: its name, its date column, its send time, its 29 February rule, its texts and payload.

    ``send_local_time``, ``feb29_rule`` and ``payload`` left at None follow the pipeline's settings
    (``send_local_time``, ``feb29_rule``, ``payload``). ``messages`` are keyed by folded language tag
    (``rules.locales.tag_key``).
    """

    name: str
    date_column: str
    message: Template
    messages: Mapping[str, Template] = dataclasses.field(default_factory=dict)
    send_local_time: time | None = None
    feb29_rule: Feb29Rule | None = None
    payload: Payload | None = None

    def local_time(self, settings: Settings) -> time:
        return self.send_local_time or settings.send_local_time

    def rule(self, settings: Settings) -> Feb29Rule:
        return self.feb29_rule or settings.feb29_rule

    def template_for(self, locale: str | None) -> Template:
        """The message template for a user's locale value: the most specific tag with a text, else the default."""
        if self.messages:
            for key in fallback_keys(locale):
                found = self.messages.get(key)
                if found is not None:
                    return found
        return self.message


BIRTHDAY = Occasion("birthday", BIRTH_DATE_COLUMN, Template.parse(BIRTHDAY_MESSAGE, MESSAGE_PLACEHOLDERS))
WORK_ANNIVERSARY = Occasion("work_anniversary", "hired_on",
                            Template.parse(WORK_ANNIVERSARY_MESSAGE, MESSAGE_PLACEHOLDERS))
BUILT_IN: tuple[Occasion, ...] = (BIRTHDAY, WORK_ANNIVERSARY)


class Occasions(Mapping[str, Occasion]):
    """The occasions of one settings, by name, in the order configured (the built-ins first)."""

    def __init__(self, occasions: tuple[Occasion, ...] = BUILT_IN) -> None:
        self._by_name = {occasion.name: occasion for occasion in occasions}
        # Every users column some occasion reads, each once: a send task asks for it with every claimed row.
        self.date_columns: tuple[str, ...] = tuple(dict.fromkeys(occasion.date_column for occasion in occasions))

    def __getitem__(self, name: str) -> Occasion:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def named(self, name: str) -> Occasion:
        """The occasion ``name``; a name not configured is an error that lists the known ones."""
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"unknown occasion {name!r}; known: {', '.join(self._by_name)}") from None

    def names(self) -> list[str]:
        return list(self._by_name)

    def source_dates(self, values: tuple | list) -> dict[str, date | None]:
        """The dates returned for ``date_columns`` keyed by column."""
        return dict(zip(self.date_columns, values, strict=True))
