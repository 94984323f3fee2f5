"""Pipeline settings: one JSON Airflow Variable with defaults, parsed and validated in one place.

All settings live in the Variable ``birthday_settings``, a JSON object keyed by setting name
(``{"send_local_time": "09:00", "batch_size": 2000}``), so a task reads them with one lookup: one metadata
query, or one secrets-backend call on a managed Airflow. A setting missing from it keeps its default, and
the environment variable ``AIRFLOW_VAR_BIRTHDAY_<NAME>`` of any single setting overrides it (read from the
environment, not looked up). Without ``birthday_settings`` the separate Variables ``birthday_<name>`` of
earlier versions are read one by one, as before, with a warning that says how to move to the JSON one.
A bad value fails the task with a message that names the setting.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from datetime import time
from typing import Any, TypeVar

from birthday_pipeline.ids import SETTINGS_VARIABLE
from birthday_pipeline.rules.calendar import Feb29Rule
from birthday_pipeline.rules.timezones import UnknownTimeZoneError, load_zone

VariableLookup = Callable[[str], "str | None"]
T = TypeVar("T")

log = logging.getLogger(__name__)

# A notification is kept at least a year and a day, so the last occasion of every user is never deleted.
MIN_RETENTION_DAYS = 366


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
    retention_days: int = 400
    attempt_retention_days: int = 90

    @classmethod
    def read(cls, lookup: VariableLookup, environment: Mapping[str, str] = os.environ) -> Settings:
        """The settings with one ``lookup`` of ``birthday_settings``, each overridable from ``environment``.

        ``lookup(name)`` returns a Variable's text, or None for a Variable that is not set. Without
        ``birthday_settings``, every setting is looked up as its own Variable (``from_variables``).
        """
        raw = lookup(SETTINGS_VARIABLE)
        if raw is None:
            settings, found = cls._from_separate_variables(lookup)
            log.warning(
                "Variable %s is not set: read the %d settings as separate Variables, one lookup each (%s set). "
                "Store them as one JSON Variable to read them in one lookup: `airflow variables set %s '%s'` "
                "(see the README, Settings); the separate Variables then no longer apply.",
                SETTINGS_VARIABLE, len(dataclasses.fields(cls)), ", ".join(found) or "none", SETTINGS_VARIABLE,
                json.dumps(settings.as_json()),
            )
            return settings
        values = _json_object(raw)
        unknown = sorted(set(values) - set(_PARSERS))
        if unknown:
            raise SettingsError(f"Variable {SETTINGS_VARIABLE} has unknown settings {unknown}; known: {sorted(_PARSERS)}")
        defaults = cls()
        parsed = {}
        for field in dataclasses.fields(cls):
            override = environment.get(environment_name(field.name))
            if override is not None:
                source, value = environment_name(field.name), override
            else:
                source, value = f"{SETTINGS_VARIABLE}[{field.name!r}]", values.get(field.name)
            parsed[field.name] = _parse(source, value, getattr(defaults, field.name), _PARSERS[field.name])
        return cls(**parsed)

    @classmethod
    def from_variables(cls, lookup: VariableLookup) -> Settings:
        """Read every setting as its own Variable through ``lookup(name)`` (None for a Variable that is not set)."""
        return cls._from_separate_variables(lookup)[0]

    @classmethod
    def _from_separate_variables(cls, lookup: VariableLookup) -> tuple[Settings, list[str]]:
        """The settings read one Variable at a time, and the names of the Variables that were set."""
        defaults = cls()
        values, found = {}, []
        for field in dataclasses.fields(cls):
            name = variable_name(field.name)
            raw = lookup(name)
            if raw is not None:
                found.append(name)
            values[field.name] = _parse(f"Variable {name}", raw, getattr(defaults, field.name), _PARSERS[field.name])
        return cls(**values), found

    def as_variables(self) -> dict[str, str]:
        """These settings as separate Variable values, by Variable name."""
        return {variable_name(name): value for name, value in self.as_json().items()}

    def as_json(self) -> dict[str, str]:
        """These settings as the value of ``birthday_settings``: text by setting name."""
        return {field.name: str(getattr(self, field.name)) for field in dataclasses.fields(self)}


def variable_name(setting: str) -> str:
    """Every setting ``x`` is the separate Variable ``birthday_x`` (and the key ``x`` of ``birthday_settings``)."""
    return f"birthday_{setting}"


def environment_name(setting: str) -> str:
    """The environment variable that overrides setting ``x``: ``AIRFLOW_VAR_BIRTHDAY_X``, as Airflow names it."""
    return f"AIRFLOW_VAR_{variable_name(setting).upper()}"


def _json_object(raw: Any) -> dict[str, Any]:
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as error:
        raise SettingsError(f"Variable {SETTINGS_VARIABLE} is not valid JSON: {error}") from error
    if not isinstance(values, dict):
        raise SettingsError(f"Variable {SETTINGS_VARIABLE} must be a JSON object of settings, not {raw!r}")
    return values


def _parse(source: str, raw: Any, default: T, parse: Callable[[str], T]) -> T:
    if raw is None:
        return default
    try:
        return parse(str(raw).strip())
    except (ValueError, UnknownTimeZoneError) as error:
        raise SettingsError(f"{source} has an invalid value {raw!r}: {error}") from error


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


def _retention_days(raw: str) -> int:
    value = int(raw)
    if value < MIN_RETENTION_DAYS:
        raise ValueError(
            f"must be at least {MIN_RETENTION_DAYS} days: every user's last occasion is kept, so that deleting "
            "history never makes a sent notification plannable again"
        )
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
    "retention_days": _retention_days,
    "attempt_retention_days": _positive_int,
}
