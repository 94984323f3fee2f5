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
import functools
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
from birthday_pipeline.rules.locales import tag_key
from birthday_pipeline.rules.occasions import (BUILT_IN, MESSAGE_PLACEHOLDERS, Occasion, Occasions,
                                               message_placeholders)
from birthday_pipeline.rules.payloads import PAYLOAD_PLACEHOLDERS, Payload, Preset
from birthday_pipeline.rules.templates import JsonTemplate, Template, TemplateError
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


# A column of the users relation, as the catalogue spells it (composed as a quoted identifier, never as text).
_MAX_IDENTIFIER_BYTES = 63
# An occasion's name: stored in every notification row of it, and shown on the Birthdays page.
_OCCASION_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def _column(value: Any) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError("expected a column name of the users relation as text")
    if len(value.encode()) > _MAX_IDENTIFIER_BYTES:
        raise ValueError(f"a column name has at most {_MAX_IDENTIFIER_BYTES} bytes")
    return value


def _occasion_name(value: str) -> str:
    if not _OCCASION_NAME.fullmatch(value):
        raise ValueError(f"occasion name {value!r} must be lower-case letters, digits and _ (such as name_day)")
    return value


def payload_of(value: Any, allowed: frozenset[str]) -> Payload:
    """A payload setting: a preset's name (``slack``), or ``{"custom": <JSON object with placeholders>}``."""
    if isinstance(value, str):
        try:
            return Payload(Preset(value.strip()))
        except ValueError:
            raise ValueError(f"unknown payload preset {value!r}; presets: {', '.join(Preset)}, "
                             'or {"custom": {...}} for a JSON template') from None
    if isinstance(value, dict) and set(value) == {"custom"} and isinstance(value["custom"], dict):
        try:
            return Payload(None, JsonTemplate.parse(value["custom"], allowed))
        except TemplateError as error:
            raise ValueError(f"custom payload {error}") from None
    raise ValueError(f'expected a preset ({", ".join(Preset)}) or {{"custom": {{...a JSON object...}}}}')


def payload_placeholders(date_column: str | None) -> frozenset[str]:
    """What a custom payload may insert: the message's placeholders (``age`` only for one occasion's birth date)
    and the payload's own."""
    return (message_placeholders(date_column) if date_column else MESSAGE_PLACEHOLDERS) | PAYLOAD_PLACEHOLDERS


def _payload_setting(value: Any) -> Any:
    payload_of(value, payload_placeholders(None))
    return value


LocalTime = Annotated[time, BeforeValidator(_local_time)]
Zone = Annotated[str, AfterValidator(_zone)]
UsersRelation = Annotated[Relation, BeforeValidator(_relation), PlainSerializer(str, return_type=str)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
RetentionDays = Annotated[int, AfterValidator(_retention_days)]
Column = Annotated[str, BeforeValidator(_column)]
OccasionName = Annotated[str, AfterValidator(_occasion_name)]
PayloadSetting = Annotated[str | dict[str, Any], AfterValidator(_payload_setting)]


class OccasionSettings(BaseModel):
    """One entry of the setting ``occasions``: a new occasion, or what changes in a built-in one (its other keys
    keep their built-in values). ``messages`` are templates by language tag; ``message`` is the default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date_column: Column | None = None
    message: str | None = None
    messages: dict[str, str] = Field(default_factory=dict)
    send_local_time: LocalTime | None = None
    feb29_rule: Feb29Rule | None = None
    payload: str | dict[str, Any] | None = None


def _occasions(configured: dict[str, OccasionSettings | None]) -> Occasions:
    """The registry ``configured`` makes of the built-in occasions: each entry replaces a built-in's keys, turns
    it off (null) or adds an occasion. ValueError names the occasion and key at fault."""
    built_in = {occasion.name: occasion for occasion in BUILT_IN}
    occasions = tuple(
        _occasion(name, configured.get(name) or OccasionSettings(), built_in.get(name))
        for name in [*built_in, *(name for name in configured if name not in built_in)]
        if not (name in configured and configured[name] is None)
    )
    if not occasions:
        raise ValueError("every occasion is turned off: nothing would ever be sent")
    return Occasions(occasions)


def _occasion(name: str, entry: OccasionSettings, base: Occasion | None) -> Occasion:
    """Occasion ``name`` as ``entry`` configures it, over the built-in ``base`` (None for a new one), its templates
    parsed."""
    date_column = entry.date_column or (base.date_column if base else None)
    message = entry.message if entry.message is not None else (base.message.text if base else None)
    if date_column is None or message is None:
        missing = [key for key, value in (("date_column", date_column), ("message", message)) if value is None]
        raise ValueError(f"occasions.{name} is a new occasion and needs {' and '.join(missing)}")
    allowed = message_placeholders(date_column)
    tags: dict[str, str] = {}  # the folded key of each tag, to the tag as written
    for tag in entry.messages:
        try:
            key = tag_key(tag)
        except ValueError as error:
            raise ValueError(f"occasions.{name}.messages: {error}") from None
        if key in tags:
            raise ValueError(f"occasions.{name}.messages: {tag!r} and {tags[key]!r} are the same language tag")
        tags[key] = tag
    texts = {"message": message, **{f"messages.{tag}": entry.messages[tag] for tag in tags.values()}}
    parsed = {}
    for where, text in texts.items():
        try:
            parsed[where] = Template.parse(text, allowed)
        except TemplateError as error:
            raise ValueError(f"occasions.{name}.{where}: {error}") from None
    try:
        payload = payload_of(entry.payload, payload_placeholders(date_column)) if entry.payload else None
    except ValueError as error:
        raise ValueError(f"occasions.{name}.payload: {error}") from None
    return Occasion(
        name, date_column, parsed["message"],
        {key: parsed[f"messages.{tag}"] for key, tag in tags.items()},
        entry.send_local_time or (base.send_local_time if base else None),
        entry.feb29_rule or (base.feb29_rule if base else None),
        payload or (base.payload if base else None),
    )


def _occasions_setting(value: dict[str, OccasionSettings | None]) -> dict[str, OccasionSettings | None]:
    _occasions(value)
    return value


OccasionsSetting = Annotated[dict[OccasionName, OccasionSettings | None], AfterValidator(_occasions_setting)]


class Settings(BaseModel):
    """The pipeline's settings: each field is a key of ``birthday_settings``, with its default and its rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    send_local_time: LocalTime = time(9, 0)
    feb29_rule: Feb29Rule = Feb29Rule.FEB28
    default_timezone: Zone = "UTC"
    batch_size: PositiveInt = 2000
    max_lateness_hours: PositiveInt = 48
    release_lead_seconds: NonNegativeInt = 30
    prepare_seconds: NonNegativeInt = 10
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
    occasions: OccasionsSetting = Field(default_factory=dict)
    payload: PayloadSetting = Preset.STANDARD.value
    locale_column: Column | None = None
    opt_out_column: Column | None = None

    @functools.cached_property
    def occasion_registry(self) -> Occasions:
        """The occasions these settings send (the built-ins, changed and added to by ``occasions``)."""
        return _occasions(self.occasions)

    @functools.cached_property
    def default_payload(self) -> Payload:
        """The body shape of every occasion that names none of its own."""
        return payload_of(self.payload, payload_placeholders(None))

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
        key = ".".join(str(part) for part in problem["loc"]) if problem["loc"] else "?"
        reason = problem["msg"].removeprefix("Value error, ")
        parts.append(f"Variable {SETTINGS_VARIABLE}[{key!r}] has an invalid value {problem['input']!r}: {reason}")
    return "; ".join(parts)
