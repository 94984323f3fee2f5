"""Settings read from the one JSON Variable ``birthday_settings``: defaults, every key, clear errors."""

from __future__ import annotations

import json
import logging
from datetime import time

import pytest

from birthday_pipeline.rules.calendar import Feb29Rule
from birthday_pipeline.settings import Relation, Settings, SettingsError


def read(**values: object) -> Settings:
    """The settings that ``birthday_settings`` holding ``values`` gives."""
    return Settings.from_variable_text(json.dumps(values))


def test_defaults_when_the_variable_is_not_set(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="birthday_pipeline.settings"):
        settings = Settings.read(lambda name: None)
    assert settings == Settings() == Settings(
        send_local_time=time(9, 0), feb29_rule=Feb29Rule.FEB28, default_timezone="UTC", batch_size=2000,
        max_lateness_hours=48, release_lead_seconds=30, prepare_seconds=10, max_in_flight=500,
        request_timeout_seconds=15, max_attempts=10, sweep_grace_seconds=120, lease_seconds=600,
    )
    # Said once per read, at INFO: running on the defaults is a choice, not a problem.
    (record,) = caplog.records
    assert record.levelno == logging.INFO and "birthday_settings is not set" in record.getMessage()


def test_every_key_overrides_its_default() -> None:
    values = {
        "send_local_time": "08:30",
        "feb29_rule": "mar1",
        "default_timezone": "Europe/Berlin",
        "batch_size": "250",
        "max_lateness_hours": " 24 ",
        "release_lead_seconds": 0,
        "prepare_seconds": "0",
        "max_in_flight": 20,
        "request_timeout_seconds": "5",
        "max_attempts": 4,
        "sweep_grace_seconds": "60",
        "lease_seconds": 300,
    }
    assert read(**values) == Settings(
        send_local_time=time(8, 30), feb29_rule=Feb29Rule.MAR1, default_timezone="Europe/Berlin", batch_size=250,
        max_lateness_hours=24, release_lead_seconds=0, prepare_seconds=0, max_in_flight=20,
        request_timeout_seconds=5, max_attempts=4, sweep_grace_seconds=60, lease_seconds=300,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("send_local_time", "25:00", "send_local_time"),
        ("send_local_time", "09:00+02:00", "carries no offset"),
        ("send_local_time", 3600, "local time as text"),
        ("feb29_rule", "feb29", "'feb28' or 'mar1'"),
        ("default_timezone", "PST", "unknown time zone 'PST'"),
        ("batch_size", "0", "greater than or equal to 1"),
        ("batch_size", True, "true or false"),
        ("max_lateness_hours", "two", "max_lateness_hours"),
        ("release_lead_seconds", "-1", "greater than or equal to 0"),
        ("prepare_seconds", "-5", "greater than or equal to 0"),
    ],
)
def test_a_bad_value_names_the_setting(name: str, value: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        read(**{name: value})
    assert f"birthday_settings[{name!r}] has an invalid value" in str(raised.value)


def test_every_bad_key_is_named_in_one_message() -> None:
    with pytest.raises(SettingsError) as raised:
        read(batch_sise=5, batch_size=0, feb29_rule="feb29", retention_days=90)
    message = str(raised.value)
    assert "unknown settings ['batch_sise']; known: ['attempt_retention_days', 'batch_size'," in message
    for key in ("batch_size", "feb29_rule", "retention_days"):
        assert f"birthday_settings[{key!r}] has an invalid value" in message
    assert isinstance(raised.value, ValueError)


def test_settings_round_trip_through_birthday_settings() -> None:
    settings = Settings(
        send_local_time=time(8, 30, 15), feb29_rule=Feb29Rule.MAR1, default_timezone="Asia/Kathmandu",
        batch_size=7, max_lateness_hours=12, release_lead_seconds=3, prepare_seconds=2, max_in_flight=9,
        request_timeout_seconds=4, max_attempts=2, sweep_grace_seconds=1, lease_seconds=60, max_requests_per_second=250,
        retry_after_floor_seconds=2, breaker_failures=3, breaker_probe_seconds=30, late_alert_minutes=45,
        users_relation=Relation(("My App", "birthday_users")), retention_days=730, attempt_retention_days=30,
        payload={"custom": {"say": "{message}", "n": [1, None]}},
        occasions={"name_day": {"date_column": "name_day", "message": "Happy name day, {first_name}",
                                "messages": {"pt-BR": "Feliz dia do nome, {first_name}"}, "payload": "slack"},
                   "work_anniversary": None},
        locale_column="lang", opt_out_column="no_announcements",
    )
    assert settings.occasion_registry.names() == ["birthday", "name_day"]
    assert Settings.from_variable_text(json.dumps(settings.as_json())) == settings
    assert set(Settings().as_json()) == {
        "send_local_time", "feb29_rule", "default_timezone", "batch_size", "max_lateness_hours",
        "release_lead_seconds", "prepare_seconds", "max_in_flight", "request_timeout_seconds", "max_attempts",
        "sweep_grace_seconds", "lease_seconds", "max_requests_per_second", "retry_after_floor_seconds",
        "breaker_failures", "breaker_probe_seconds", "late_alert_minutes", "users_relation", "retention_days",
        "attempt_retention_days", "occasions", "payload", "locale_column", "opt_out_column",
    }


def test_settings_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        Settings().batch_size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "parts"),
    [("users", ("users",)), (" App.Birthday_Users ", ("app", "birthday_users")),
     ('"My App"."Users"', ("My App", "Users")), ('crm."odd""name"', ("crm", 'odd"name'))],
)
def test_the_users_relation_is_read_as_postgresql_reads_a_name(value: str, parts: tuple[str, ...]) -> None:
    relation = read(users_relation=value).users_relation
    assert relation == Relation(parts)
    assert read(users_relation=str(relation)).users_relation == relation


@pytest.mark.parametrize("value", ["", "users; DROP TABLE users", "a.b.c", "app..users", '"unclosed', "9lives"])
def test_a_users_relation_that_is_not_a_name_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"birthday_settings\['users_relation'\]"):
        read(users_relation=value)


class Lookups:
    """Variables by name, recording every lookup made."""

    def __init__(self, **variables: str) -> None:
        self.variables = variables
        self.looked_up: list[str] = []

    def __call__(self, name: str) -> str | None:
        self.looked_up.append(name)
        return self.variables.get(name)


def test_one_lookup_of_birthday_settings_reads_every_setting() -> None:
    lookups = Lookups(birthday_settings=json.dumps({"send_local_time": "08:30", "batch_size": 250,
                                                    "retention_days": "500"}))
    settings = Settings.read(lookups)
    assert lookups.looked_up == ["birthday_settings"]
    assert (settings.send_local_time, settings.batch_size, settings.retention_days) == (time(8, 30), 250, 500)
    assert settings.max_in_flight == 500 and settings.attempt_retention_days == 90  # not in the JSON: defaults


def test_separate_variables_of_earlier_versions_no_longer_apply() -> None:
    lookups = Lookups(birthday_batch_size="7", birthday_settings=json.dumps({"max_in_flight": 20}))
    settings = Settings.read(lookups)
    assert lookups.looked_up == ["birthday_settings"]
    assert (settings.batch_size, settings.max_in_flight) == (2000, 20)
    assert Settings.read(Lookups(birthday_batch_size="7")) == Settings()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "birthday_settings is not valid JSON"),
        ('["batch_size"]', "must be a JSON object"),
        ('{"batch_sise": 5}', r"unknown settings \['batch_sise'\]; known: \[.*'batch_size'"),
        ('{"batch_size": 0}', r"birthday_settings\['batch_size'\] has an invalid value 0: .*greater than or equal"),
        ('{"max_attempts": "many"}', r"birthday_settings\['max_attempts'\] has an invalid value 'many'"),
        ('{"retention_days": 90}', "at least 366 days"),
        ('{"attempt_retention_days": 0}', r"attempt_retention_days'\] has an invalid value 0"),
    ],
)
def test_a_bad_birthday_settings_names_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.read(Lookups(birthday_settings=value))
