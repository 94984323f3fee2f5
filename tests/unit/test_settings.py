"""Settings read from Variables: one JSON Variable, its overrides, the separate Variables, clear errors."""

from __future__ import annotations

import json
import logging
from datetime import time

import pytest

from birthday_pipeline.rules.calendar import Feb29Rule
from birthday_pipeline.settings import Relation, Settings, SettingsError


def test_defaults_when_no_variable_is_set() -> None:
    settings = Settings.from_variables(lambda name: None)
    assert settings == Settings(time(9, 0), Feb29Rule.FEB28, "UTC", 2000, 48, 30, 500, 15, 10, 120, 600)


def test_every_variable_overrides_its_default() -> None:
    values = {
        "birthday_send_local_time": "08:30",
        "birthday_feb29_rule": "mar1",
        "birthday_default_timezone": "Europe/Berlin",
        "birthday_batch_size": "250",
        "birthday_max_lateness_hours": " 24 ",
        "birthday_release_lead_seconds": "0",
        "birthday_max_in_flight": "20",
        "birthday_request_timeout_seconds": "5",
        "birthday_max_attempts": "4",
        "birthday_sweep_grace_seconds": "60",
        "birthday_lease_seconds": "300",
    }
    assert Settings.from_variables(values.get) == Settings(
        time(8, 30), Feb29Rule.MAR1, "Europe/Berlin", 250, 24, 0, 20, 5, 4, 60, 300
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("birthday_send_local_time", "25:00", "birthday_send_local_time"),
        ("birthday_send_local_time", "09:00+02:00", "carries no offset"),
        ("birthday_feb29_rule", "feb29", "expected one of feb28, mar1"),
        ("birthday_default_timezone", "PST", "unknown time zone 'PST'"),
        ("birthday_batch_size", "0", "positive whole number"),
        ("birthday_max_lateness_hours", "two", "birthday_max_lateness_hours"),
        ("birthday_release_lead_seconds", "-1", "0 or more"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        Settings.from_variables({name: value}.get)
    assert name in str(raised.value)


def test_settings_round_trip_through_their_variables() -> None:
    settings = Settings(time(8, 30, 15), Feb29Rule.MAR1, "Asia/Kathmandu", 7, 12, 3, 9, 4, 2, 1, 60, 250, 2, 45,
                        Relation(("My App", "birthday_users")), 730, 30)
    assert Settings.from_variables(settings.as_variables().get) == settings
    assert set(Settings().as_variables()) == {
        "birthday_send_local_time", "birthday_feb29_rule", "birthday_default_timezone", "birthday_batch_size",
        "birthday_max_lateness_hours", "birthday_release_lead_seconds", "birthday_max_in_flight",
        "birthday_request_timeout_seconds", "birthday_max_attempts", "birthday_sweep_grace_seconds",
        "birthday_lease_seconds", "birthday_max_requests_per_second", "birthday_retry_after_floor_seconds",
        "birthday_late_alert_minutes", "birthday_users_relation", "birthday_retention_days",
        "birthday_attempt_retention_days",
    }


@pytest.mark.parametrize(
    ("value", "parts"),
    [("users", ("users",)), (" App.Birthday_Users ", ("app", "birthday_users")),
     ('"My App"."Users"', ("My App", "Users")), ('crm."odd""name"', ("crm", 'odd"name'))],
)
def test_the_users_relation_is_read_as_postgresql_reads_a_name(value: str, parts: tuple[str, ...]) -> None:
    relation = Settings.from_variables({"birthday_users_relation": value}.get).users_relation
    assert relation == Relation(parts)
    assert Settings.from_variables({"birthday_users_relation": str(relation)}.get).users_relation == relation


@pytest.mark.parametrize("value", ["", "users; DROP TABLE users", "a.b.c", "app..users", '"unclosed', "9lives"])
def test_a_users_relation_that_is_not_a_name_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="birthday_users_relation"):
        Settings.from_variables({"birthday_users_relation": value}.get)


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
    settings = Settings.read(lookups, environment={})
    assert lookups.looked_up == ["birthday_settings"]
    assert (settings.send_local_time, settings.batch_size, settings.retention_days) == (time(8, 30), 250, 500)
    assert settings.max_in_flight == 500 and settings.attempt_retention_days == 90  # not in the JSON: defaults


def test_an_environment_variable_overrides_its_setting_without_a_lookup() -> None:
    lookups = Lookups(birthday_settings=json.dumps({"batch_size": "250", "max_in_flight": "20"}),
                      birthday_batch_size="7")
    settings = Settings.read(lookups, environment={"AIRFLOW_VAR_BIRTHDAY_BATCH_SIZE": "3",
                                                   "AIRFLOW_VAR_BIRTHDAY_FEB29_RULE": "mar1"})
    assert lookups.looked_up == ["birthday_settings"]
    assert (settings.batch_size, settings.feb29_rule, settings.max_in_flight) == (3, Feb29Rule.MAR1, 20)


def test_without_birthday_settings_the_separate_variables_still_apply_with_a_warning(caplog) -> None:
    lookups = Lookups(birthday_send_local_time="07:15", birthday_lease_seconds="300")
    with caplog.at_level(logging.WARNING, logger="birthday_pipeline.settings"):
        settings = Settings.read(lookups, environment={})
    assert (settings.send_local_time, settings.lease_seconds) == (time(7, 15), 300)
    assert lookups.looked_up[0] == "birthday_settings" and len(lookups.looked_up) == 1 + len(Settings().as_json())
    (warning,) = caplog.records
    message = warning.getMessage()
    assert "birthday_send_local_time, birthday_lease_seconds set" in message
    command = message.split("`")[1]
    assert command.startswith("airflow variables set birthday_settings '")
    # The command it suggests stores exactly the settings in force.
    suggested = command.removeprefix("airflow variables set birthday_settings '").removesuffix("'")
    assert Settings.read(Lookups(birthday_settings=suggested), environment={}) == settings


def test_settings_round_trip_through_birthday_settings() -> None:
    settings = Settings(time(8, 30, 15), Feb29Rule.MAR1, "Asia/Kathmandu", 7, 12, 3, 9, 4, 2, 1, 60, 250, 2, 45,
                        Relation(("My App", "birthday_users")), 730, 30)
    assert Settings.read(Lookups(birthday_settings=json.dumps(settings.as_json())), environment={}) == settings


@pytest.mark.parametrize(
    ("value", "environment", "message"),
    [
        ("{not json", {}, "birthday_settings is not valid JSON"),
        ('["batch_size"]', {}, "must be a JSON object"),
        ('{"batch_sise": 5}', {}, r"unknown settings \['batch_sise'\]"),
        ('{"batch_size": 0}', {}, r"birthday_settings\['batch_size'\] has an invalid value 0: must be a positive"),
        ("{}", {"AIRFLOW_VAR_BIRTHDAY_MAX_ATTEMPTS": "many"}, "AIRFLOW_VAR_BIRTHDAY_MAX_ATTEMPTS has an invalid"),
        ('{"retention_days": 90}', {}, "at least 366 days"),
        ('{"attempt_retention_days": 0}', {}, "attempt_retention_days.*positive"),
    ],
)
def test_a_bad_birthday_settings_names_what_is_wrong(value: str, environment: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.read(Lookups(birthday_settings=value), environment=environment)
