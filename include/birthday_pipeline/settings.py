"""Pipeline settings: Airflow Variables with defaults, parsed and validated in one place.

Tasks pass a lookup (``Variable.get``), so a Variable or an ``AIRFLOW_VAR_<NAME>`` environment variable
overrides a default. A bad value fails the task with a message that names the Variable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import time
from typing import Any, TypeVar

from birthday_pipeline.rules import Feb29Rule
from birthday_pipeline.timezones import UnknownTimeZoneError, load_zone

VariableLookup = Callable[[str], "str | None"]
T = TypeVar("T")


class SettingsError(ValueError):
    """A Variable holds a value the pipeline cannot use."""


@dataclasses.dataclass(frozen=True)
class Relation:
    """A table or view, as identifiers: ``("users",)`` or ``("app", "birthday_users")``.

    SQL names it only as a composed identifier (``statements.compose``), never as interpolated text.
    """

    parts: tuple[str, ...]

    def quoted(self) -> str:
        """The name as SQL text with every part quoted, for ``to_regclass``: ``"app"."birthday_users"``."""
        return ".".join('"' + part.replace('"', '""') + '"' for part in self.parts)

    def __str__(self) -> str:
        """The name as a person writes it, which ``_relation`` reads back: ``app.birthday_users``."""
        return ".".join(part if _PLAIN_IDENTIFIER.fullmatch(part) else '"' + part.replace('"', '""') + '"'
                        for part in self.parts)


_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")
# One part of a relation's name: a quoted identifier ("" is a quote inside it), or a plain one.
_NAME_PART = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')


@dataclasses.dataclass(frozen=True)
class Settings:
    send_local_time: time = time(9, 0)
    feb29_rule: Feb29Rule = Feb29Rule.FEB28
    default_timezone: str = "UTC"
    batch_size: int = 2000
    max_lateness_hours: int = 48
    release_lead_seconds: int = 30
    max_in_flight: int = 500
    request_timeout_seconds: int = 15
    max_attempts: int = 10
    sweep_grace_seconds: int = 120
    lease_seconds: int = 600
    max_requests_per_second: int = 0
    retry_after_floor_seconds: int = 5
    late_alert_minutes: int = 15
    users_relation: Relation = Relation(("users",))

    @classmethod
    def from_variables(cls, lookup: VariableLookup) -> Settings:
        """Read every setting through ``lookup(name)``, which returns None for a Variable that is not set."""
        defaults = cls()
        values = {
            field.name: _parse(lookup, variable_name(field.name), getattr(defaults, field.name), _PARSERS[field.name])
            for field in dataclasses.fields(cls)
        }
        return cls(**values)

    def as_variables(self) -> dict[str, str]:
        """These settings as Variable values, by Variable name."""
        return {variable_name(field.name): str(getattr(self, field.name)) for field in dataclasses.fields(self)}


def variable_name(setting: str) -> str:
    """Every setting ``x`` is the Variable ``birthday_x``."""
    return f"birthday_{setting}"


def _parse(lookup: VariableLookup, name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = lookup(name)
    if raw is None:
        return default
    try:
        return parse(str(raw).strip())
    except (ValueError, UnknownTimeZoneError) as error:
        raise SettingsError(f"Variable {name} has an invalid value {raw!r}: {error}") from error


def _local_time(raw: str) -> time:
    parsed = time.fromisoformat(raw)
    if parsed.tzinfo is not None:
        raise ValueError("a local time carries no offset")
    return parsed


def _feb29_rule(raw: str) -> Feb29Rule:
    try:
        return Feb29Rule(raw)
    except ValueError:
        raise ValueError(f"expected one of {', '.join(Feb29Rule)}") from None


def _zone(raw: str) -> str:
    load_zone(raw)
    return raw


def _relation(raw: str) -> Relation:
    """``users``, ``app.birthday_users`` or ``"App"."Birthday Users"``: PostgreSQL's rules, plain names folded to
    lower case, quoted ones taken as written."""
    parts, position = [], 0
    while True:
        match = _NAME_PART.match(raw, position)
        if match is None:
            raise ValueError("expected a table or view name such as users, app.birthday_users or \"App\".\"Users\"")
        parts.append(match[1].replace('""', '"') if match[1] is not None else match[2].lower())
        position = match.end()
        if position == len(raw):
            break
        if raw[position] != ".":
            raise ValueError(f"unexpected {raw[position]!r} at position {position + 1}; names are schema.relation")
        position += 1
    if len(parts) > 2:
        raise ValueError("at most a schema and a relation (schema.relation)")
    return Relation(tuple(parts))


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive whole number")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


_PARSERS: dict[str, Callable[[str], Any]] = {
    "send_local_time": _local_time,
    "feb29_rule": _feb29_rule,
    "default_timezone": _zone,
    "batch_size": _positive_int,
    "max_lateness_hours": _positive_int,
    "release_lead_seconds": _non_negative_int,
    "max_in_flight": _positive_int,
    "request_timeout_seconds": _positive_int,
    "max_attempts": _positive_int,
    "sweep_grace_seconds": _non_negative_int,
    "lease_seconds": _positive_int,
    "max_requests_per_second": _non_negative_int,
    "retry_after_floor_seconds": _non_negative_int,
    "late_alert_minutes": _non_negative_int,
    "users_relation": _relation,
}
