"""Safe templates, language fallback and payload bodies: what a team may write, what is refused when the settings are
read, and what a body holds whatever a user's name holds."""

from __future__ import annotations

import json
from datetime import date

import pytest

from birthday_pipeline.deliver.messages import Renderer
from birthday_pipeline.rules.locales import fallback_keys
from birthday_pipeline.rules.templates import JsonTemplate, Template, TemplateError
from birthday_pipeline.settings import Settings, SettingsError

ALLOWED = frozenset({"first_name", "name"})


@pytest.mark.parametrize(("text", "refusal"), [
    ("{name.__class__}", "unknown placeholder {name.__class__}"),
    ("{name.__init__.__globals__}", "unknown placeholder"),
    ("{name[0]}", "unknown placeholder {name[0]}"),
    ("{name!r}", "has a conversion or format"),
    ("{name:>99999}", "has a conversion or format"),
    ("{}", "unknown placeholder {}"),
    ("{0}", "unknown placeholder {0}"),
    ("{password}", "unknown placeholder {password}; known: first_name, name"),
    ("Hey {name", "write {{ and }} for a literal brace"),
    ("Hey name}", "write {{ and }} for a literal brace"),
])
def test_a_template_reaching_past_its_named_values_is_refused(text: str, refusal: str) -> None:
    with pytest.raises(TemplateError, match=refusal.replace("{", r"\{").replace("[", r"\[").replace("}", r"\}")):
        Template.parse(text, ALLOWED)


def test_a_template_fills_only_its_placeholders_and_takes_values_as_text() -> None:
    template = Template.parse("{{literal}} {name}, {first_name}!{name}", ALLOWED)
    assert template.render({"name": "{first_name} {0.__class__}", "first_name": "Ada"}) == (
        "{literal} {first_name} {0.__class__}, Ada!{first_name} {0.__class__}")


def test_a_custom_payload_fills_string_values_only_and_json_escapes_them() -> None:
    template = JsonTemplate.parse({"text": "{name}", "{name}": 1, "list": ["{first_name}", True, None, 2.5]}, ALLOWED)
    hostile = '"}, "admin": true, "x": {"'
    rendered = json.dumps(template.render({"name": hostile, "first_name": "\u202e"}))
    assert json.loads(rendered) == {"text": hostile, "{name}": 1, "list": ["\u202e", True, None, 2.5]}


@pytest.mark.parametrize(("value", "keys"), [
    ("pt-BR", ["pt-br", "pt"]),
    ("zh-Hant-TW", ["zh-hant-tw", "zh-hant", "zh"]),
    (" de_AT ", ["de-at", "de"]),
    ("x" * 36, []),
    ("not a tag!!", []),
    ("", []),
    (None, []),
    ("1a", []),
])
def test_a_users_locale_is_looked_up_most_specific_first_and_no_tag_finds_nothing(value, keys) -> None:
    assert fallback_keys(value) == keys


def settings_error(**values) -> str:
    with pytest.raises(SettingsError) as refused:
        Settings.from_variable_text(json.dumps(values))
    return str(refused.value)


def test_a_bad_template_is_refused_when_the_settings_are_read_naming_its_key() -> None:
    assert "occasions.birthday.messages.de: unknown placeholder {vorname}" in settings_error(
        occasions={"birthday": {"messages": {"de": "Alles Gute, {vorname}!"}}})
    assert "occasions.work_anniversary.message: unknown placeholder {age}" in settings_error(
        occasions={"work_anniversary": {"message": "{age} years, {name}!"}})
    assert "occasions.name_day is a new occasion and needs date_column and message" in settings_error(
        occasions={"name_day": {}})
    assert "occasions.birthday.messages: 'pt BR' is not a language tag" in settings_error(
        occasions={"birthday": {"messages": {"pt BR": "x"}}})
    assert "'pt-BR' and 'pt-br' are the same language tag" in settings_error(
        occasions={"birthday": {"messages": {"pt-br": "x", "pt-BR": "y"}}})
    assert "occasions.birthday.payload: custom payload at $.to[1]: unknown placeholder {email}" in settings_error(
        occasions={"birthday": {"payload": {"custom": {"to": ["{user_id}", "{email}"]}}}})
    assert "unknown payload preset 'telegram'" in settings_error(payload="telegram")
    assert "every occasion is turned off" in settings_error(occasions={"birthday": None, "work_anniversary": None})
    assert "occasions.Name Day" in settings_error(occasions={"Name Day": {"date_column": "d", "message": "x"}})
    assert "locale_column" in settings_error(locale_column="")


def test_with_nothing_configured_the_body_is_byte_for_byte_the_one_always_sent() -> None:
    body = Renderer(Settings()).body(7, 42, "Zoë", "O'Brien", "work_anniversary", date(2026, 12, 15),
                                     date(2016, 12, 15), "de", "wh-7")
    assert body == ('{"message":"Hey, Zoë O\'Brien happy work anniversary","notification_id":7,"user_id":42,'
                    '"occasion":"work_anniversary","occasion_date":"2026-12-15"}').encode()


def test_age_and_years_count_from_the_occasions_date() -> None:
    settings = Settings.from_variable_text(json.dumps({"payload": "slack", "occasions": {
        "birthday": {"message": "{first_name} turns {age} on {occasion_date} ({year})"},
        "work_anniversary": {"message": "{last_name}: {years} years"}}}))
    renderer = Renderer(settings)
    assert renderer.body(1, 1, "Ada", "Lovelace", "birthday", date(2026, 12, 10), date(1990, 12, 10), None,
                         "w") == b'{"text":"Ada turns 36 on 2026-12-10 (2026)"}'
    assert renderer.body(1, 1, "Ada", "Lovelace", "work_anniversary", date(2026, 3, 1), date(2016, 2, 29), None,
                         "w") == b'{"text":"Lovelace: 10 years"}'
