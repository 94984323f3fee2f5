"""Pipeline settings: one JSON Airflow Variable with defaults, as a typed model validated in one place.

All settings live in the Variable ``birthday_settings``, a JSON object keyed by setting name
(``{"send_local_time": "09:00", "batch_size": 2000}``), so a task reads them with one lookup: one metadata
query, or one secrets-backend call on a managed Airflow. Its key is a setting's only name. A setting missing
from it keeps its default; without the Variable every default applies. Like any Variable it can come from the
environment, as Airflow reads ``AIRFLOW_VAR_BIRTHDAY_SETTINGS='{"batch_size": 500}'``, or from a secrets
backend. A bad value or an unknown key fails the task with one message that names every bad setting.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable
from datetime import time
from typing import Annotated, Any

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError,
                      field_validator)

from birthday_pipeline.ids import SETTINGS_VARIABLE
from birthday_pipeline.rules.calendar import Feb29Rule
from birthday_pipeline.rules.timezones import load_zone

VariableLookup = Callable[[str], "str | None"]

log = logging.getLogger(__name__)

# Where Airflow's environment secrets backend finds birthday_settings: '{"batch_size": 500}' set here wins over
# the metadata database (make run, the tests and the benchmarks set it; the pipeline reads only the Variable).
SETTINGS_ENVIRONMENT = f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}"

# A notification is kept at least a year and a day, so the last occasion of every user is never deleted.
MIN_RETENTION_DAYS = 366


class SettingsError(ValueError):
    """The Variable ``birthday_settings`` holds something the pipeline cannot use."""


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


def _local_time(value: Any) -> time:
    """``09:00`` or ``08:30:15``: a wall-clock time, without an offset (each user's zone gives that)."""
    if isinstance(value, time):
        parsed = value
    elif isinstance(value, str):
        parsed = time.fromisoformat(value)
    else:
        raise ValueError("expected a local time as text, such as 09:00")
    if parsed.tzinfo is not None:
        raise ValueError("a local time carries no offset")
    return parsed


def _zone(value: str) -> str:
    load_zone(value)  # UnknownTimeZoneError is a ValueError: pydantic reports it as the reason
    return value


def _relation(value: Any) -> Relation:
    """``users``, ``app.birthday_users`` or ``"App"."Birthday Users"``: PostgreSQL's rules, plain names folded to
    lower case, quoted ones taken as written."""
    if isinstance(value, Relation):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a table or view name as text")
    parts, position = [], 0
    while True:
        match = _NAME_PART.match(value, position)
        if match is None:
            raise ValueError("expected a table or view name such as users, app.birthday_users or \"App\".\"Users\"")
        parts.append(match[1].replace('""', '"') if match[1] is not None else match[2].lower())
        position = match.end()
        if position == len(value):
            break
        if value[position] != ".":
            raise ValueError(f"unexpected {value[position]!r} at position {position + 1}; names are schema.relation")
        position += 1
    if len(parts) > 2:
        raise ValueError("at most a schema and a relation (schema.relation)")
    return Relation(tuple(parts))


def _retention_days(value: int) -> int:
    if value < MIN_RETENTION_DAYS:
        raise ValueError(
            f"must be at least {MIN_RETENTION_DAYS} days: every user's last occasion is kept, so that deleting "
            "history never makes a sent notification plannable again"
        )
    return value


LocalTime = Annotated[time, BeforeValidator(_local_time)]
Zone = Annotated[str, AfterValidator(_zone)]
UsersRelation = Annotated[Relation, BeforeValidator(_relation), PlainSerializer(str, return_type=str)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
RetentionDays = Annotated[int, AfterValidator(_retention_days)]


class Settings(BaseModel):
    """The pipeline's settings: each field is a key of ``birthday_settings``, with its default and its rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    send_local_time: LocalTime = time(9, 0)
    feb29_rule: Feb29Rule = Feb29Rule.FEB28
    default_timezone: Zone = "UTC"
    batch_size: PositiveInt = 2000
    max_lateness_hours: PositiveInt = 48
    release_lead_seconds: NonNegativeInt = 30
    max_in_flight: PositiveInt = 500
    request_timeout_seconds: PositiveInt = 15
    max_attempts: PositiveInt = 10
    sweep_grace_seconds: NonNegativeInt = 120
    lease_seconds: PositiveInt = 600
    max_requests_per_second: NonNegativeInt = 0
    retry_after_floor_seconds: NonNegativeInt = 5
    breaker_failures: PositiveInt = 20
    breaker_probe_seconds: PositiveInt = 60
    late_alert_minutes: NonNegativeInt = 15
    users_relation: UsersRelation = Relation(("users",))
    retention_days: RetentionDays = 400
    attempt_retention_days: PositiveInt = 90

    @field_validator("*", mode="before")
    @classmethod
    def _text_as_written(cls, value: Any) -> Any:
        """Text is read without its surrounding blanks; true and false are no setting's value."""
        if isinstance(value, bool):
            raise ValueError("true or false is not a value of any setting")
        return value.strip() if isinstance(value, str) else value

    @classmethod
    def read(cls, lookup: VariableLookup) -> Settings:
        """The settings with one ``lookup`` of ``birthday_settings`` (its text, or None when it is not set)."""
        return cls.from_variable_text(lookup(SETTINGS_VARIABLE))

    @classmethod
    def from_variable_text(cls, text: str | None) -> Settings:
        """The settings the text of ``birthday_settings`` holds; None (the Variable is not set) is every default.

        Raises SettingsError naming every bad key: not JSON, not an object, unknown keys, invalid values.
        """
        if text is None:
            log.info("Variable %s is not set: every setting has its default", SETTINGS_VARIABLE)
            return cls()
        try:
            values = json.loads(text) if isinstance(text, str) else text
        except ValueError as error:
            raise SettingsError(f"Variable {SETTINGS_VARIABLE} is not valid JSON: {error}") from error
        if not isinstance(values, dict):
            raise SettingsError(f"Variable {SETTINGS_VARIABLE} must be a JSON object of settings, not {text!r}")
        try:
            return cls(**values)
        except ValidationError as error:
            raise SettingsError(_describe(error)) from None

    def as_json(self) -> dict[str, Any]:
        """These settings as the value of ``birthday_settings``: JSON values by setting name."""
        return self.model_dump(mode="json")


def _describe(error: ValidationError) -> str:
    """One message for every problem pydantic found: the unknown keys, then each invalid value and why."""
    unknown = sorted(str(problem["loc"][0]) for problem in error.errors() if problem["type"] == "extra_forbidden")
    parts = []
    if unknown:
        parts.append(f"Variable {SETTINGS_VARIABLE} has unknown settings {unknown}; "
                     f"known: {sorted(Settings.model_fields)}")
    for problem in error.errors():
        if problem["type"] == "extra_forbidden":
            continue
        key = problem["loc"][0] if problem["loc"] else "?"
        reason = problem["msg"].removeprefix("Value error, ")
        parts.append(f"Variable {SETTINGS_VARIABLE}[{key!r}] has an invalid value {problem['input']!r}: {reason}")
    return "; ".join(parts)
