"""What one notification says and the body it goes out as: its occasion's template for the user's language,
filled from the user row and the notification, in its payload shape.

A ``Renderer`` is built once per task from the settings, whose templates were parsed and checked when they were
read; per row it only looks up a template and joins text. Names lose control and bidirectional-override
characters and their surrounding blanks (``message_name``); every other character, in any script, is kept.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from birthday_pipeline.rules.blanks import strip_blanks
from birthday_pipeline.rules.occasions import BIRTH_DATE_COLUMN
from birthday_pipeline.settings import Settings

if TYPE_CHECKING:
    from birthday_pipeline.deliver.claims import ClaimedRow

# What a name loses on its way into a message: the C0 and C1 controls (BEL, ESC and the terminal sequences it
# starts, ...) and the bidirectional embeddings, overrides and isolates (U+202E turns the rest of a line
# around). Joiners and marks stay: scripts and emoji sequences need them; right-to-left letters are letters.
_STRIPPED_FROM_NAMES = dict.fromkeys(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def name_part(text: str) -> str:
    """A first or last name as a message shows it: without control characters, blanks trimmed."""
    return strip_blanks(text.translate(_STRIPPED_FROM_NAMES))


def message_name(first_name: str, last_name: str) -> str:
    """The name a message greets: the parts (``name_part``) that are not empty, joined by a space."""
    parts = (name_part(part) for part in (first_name, last_name))
    return " ".join(part for part in parts if part)


class Renderer:
    """Renders the messages and bodies of the occasions of ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self._occasions = settings.occasion_registry
        self._payloads = {name: occasion.payload or settings.default_payload
                          for name, occasion in self._occasions.items()}
        # Where each occasion's date sits in a claimed row's dates.
        self._date_positions = {name: self._occasions.date_columns.index(occasion.date_column)
                                for name, occasion in self._occasions.items()}

    def body_of(self, row: ClaimedRow) -> bytes:
        """The request body of a claimed row."""
        return self.body(row.id, row.user_id, row.first_name, row.last_name, row.occasion, row.occasion_date,
                         row.dates[self._date_positions[row.occasion]], row.locale, str(row.webhook_id))

    def body(self, notification_id: int, user_id: int, first_name: str, last_name: str, occasion_name: str,
             occasion_date: date, source_date: date | None, locale: str | None, webhook_id: str) -> bytes:
        """The request body of one notification, in its occasion's payload shape."""
        occasion = self._occasions.named(occasion_name)
        first, last = name_part(first_name), name_part(last_name)
        values = {
            "first_name": first,
            "last_name": last,
            "name": " ".join(part for part in (first, last) if part),
            "occasion": occasion_name,
            "occasion_date": occasion_date.isoformat(),
            "year": str(occasion_date.year),
            "years": "" if source_date is None else str(occasion_date.year - source_date.year),
            "notification_id": str(notification_id),
            "user_id": str(user_id),
            "webhook_id": webhook_id,
        }
        if occasion.date_column == BIRTH_DATE_COLUMN:
            values["age"] = values["years"]
        values["message"] = occasion.template_for(locale).render(values)
        return self._payloads[occasion_name].body(values, notification_id, user_id)
