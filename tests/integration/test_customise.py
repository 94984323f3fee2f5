"""What a team configures instead of forking: payload shapes, messages in the user's language, a third occasion and
an opt-out column, through the real send path (the hourly DAG, the resend DAG and the send task's body) against
real PostgreSQL and a real receiver that checks each body's documented shape.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from birthday_pipeline.deliver.webhooks import verify
from birthday_pipeline.plan.planning import User
from tests.conftest import WEBHOOK_SECRET, insert_users, set_settings
from tests.payload_shapes import SHAPES, accepting

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


@pytest.fixture(scope="module")
def dags(app_database_url):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    return bag.get_dag("birthday_notifications"), bag.get_dag("birthday_resend")


@pytest.fixture
def team_view(db):
    """A team's users view: the bundled users joined to a preferences table holding each user's language, whether
    they opted out of announcements and their name day (README, Customise)."""
    with db.cursor() as cursor:
        cursor.execute("""
            CREATE TABLE team_preferences (
                user_id bigint PRIMARY KEY, lang text, no_announcements boolean NOT NULL DEFAULT false, name_day date);
            CREATE INDEX team_preferences_name_day_month_day_idx
                ON team_preferences (((extract(month FROM name_day) * 100 + extract(day FROM name_day))::integer));
            CREATE VIEW team_users AS
                SELECT u.id, u.first_name, u.last_name, u.birthday, u.timezone, u.hired_on, p.lang,
                    coalesce(p.no_announcements, false) AS no_announcements, p.name_day
                FROM users AS u LEFT JOIN team_preferences AS p ON p.user_id = u.id;
        """)
    db.commit()
    yield "team_users"
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("DROP VIEW team_users; DROP TABLE team_preferences")
    db.commit()


def preferences(db, rows: list[tuple[int, str | None, bool, date | None]]) -> None:
    with db.cursor() as cursor:
        cursor.executemany("INSERT INTO team_preferences (user_id, lang, no_announcements, name_day)"
                           " VALUES (%s, %s, %s, %s)", rows)
    db.commit()


def due_now(monkeypatch) -> datetime:
    """An instant 30 seconds ago, made every occasion's send time."""
    instant = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
    set_settings(monkeypatch, send_local_time=instant.strftime("%H:%M:%S"))
    return instant


def hourly_run_for(dag, instant: datetime):
    return dag.test(logical_date=instant.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))


def notifications(db) -> list[tuple]:
    db.rollback()
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, occasion, status, last_error FROM notifications ORDER BY user_id, occasion")
        return cursor.fetchall()


# A name that JSON must escape: its quotes stay inside the string values of every shape.
FIRST, LAST = 'Zoë "Z"', "O'Brien"
MESSAGE_JSON = 'Hey, Zoë \\"Z\\" O\'Brien it\'s your birthday'
CUSTOM = {"custom": {"event": "greeting", "to": {"id": "{user_id}", "first": "{first_name}"}, "text": "{message}",
                     "about": "{occasion} on {occasion_date}, {age} years", "tags": ["birthdays", "{webhook_id}"],
                     "priority": 2, "silent": False, "{name}": None}}


def custom_shape(body) -> list[str]:
    """The receiving API's own fields (the custom template's), with its types."""
    expected = {"event": str, "to": dict, "text": str, "about": str, "tags": list, "priority": int, "silent": bool}
    return [f"{key} missing or not {kind.__name__}" for key, kind in expected.items()
            if not isinstance(body.get(key), kind)]


def expected_body(payload: str, day: date, webhook_id: str) -> bytes:
    """The request body each shape carries, as the receiver must get it, byte for byte."""
    text = {
        "standard": f'{{"message":"{MESSAGE_JSON}","notification_id":1,"user_id":1,"occasion":"birthday",'
                    f'"occasion_date":"{day.isoformat()}"}}',
        "slack": f'{{"text":"{MESSAGE_JSON}"}}',
        "discord": f'{{"content":"{MESSAGE_JSON}"}}',
        "teams": f'{{"type":"message","attachments":[{{"contentType":"{ADAPTIVE_CARD}","contentUrl":null,'
                 '"content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard",'
                 f'"version":"1.2","body":[{{"type":"TextBlock","text":"{MESSAGE_JSON}","wrap":true}}]}}}}]}}',
        "custom": f'{{"event":"greeting","to":{{"id":"1","first":"Zoë \\"Z\\""}},"text":"{MESSAGE_JSON}",'
                  f'"about":"birthday on {day.isoformat()}, 36 years","tags":["birthdays","{webhook_id}"],'
                  '"priority":2,"silent":false,"{name}":null}',
    }[payload]
    return text.encode("utf-8")


@pytest.mark.parametrize("payload", ["standard", "slack", "discord", "teams", "custom"])
def test_each_payload_reaches_a_receiver_that_checks_the_shape_its_service_documents(db, webhook, dags, monkeypatch,
                                                                                      payload) -> None:
    hourly, _ = dags
    instant = due_now(monkeypatch)
    if payload == "custom":  # the birthday's own payload, so that it may say {age}
        set_settings(monkeypatch, occasions={"birthday": {"payload": CUSTOM}})
    elif payload != "standard":  # standard is the default: nothing configured
        set_settings(monkeypatch, payload=payload)
    webhook.answer_with(accepting(custom_shape if payload == "custom" else SHAPES[payload]))
    insert_users(db, [User(1, instant.date().replace(year=instant.year - 36), "UTC", FIRST, LAST)])

    assert hourly_run_for(hourly, instant).state == "success"

    (request,) = webhook.requests
    with db.cursor() as cursor:
        cursor.execute("SELECT status, webhook_id FROM notifications")
        status, webhook_id = cursor.fetchone()
    assert (request.status, status) == (200, "sent")
    assert request.body == expected_body(payload, instant.date(), str(webhook_id))
    assert request.headers["webhook-id"] == str(webhook_id)
    assert verify(WEBHOOK_SECRET, request.headers["webhook-id"], request.headers["webhook-timestamp"], request.body,
                  request.headers["webhook-signature"])
    print(f"{payload} body as received: {request.body.decode('utf-8')}")


def test_a_payload_per_occasion_goes_beside_the_default(db, webhook, dags, monkeypatch) -> None:
    hourly, _ = dags
    instant = due_now(monkeypatch)
    set_settings(monkeypatch, occasions={"work_anniversary": {"payload": "slack"}})
    insert_users(db, [User(1, instant.date().replace(year=1990), "UTC", "Ada", "Lovelace",
                           {"hired_on": instant.date().replace(year=2015)})])

    assert hourly_run_for(hourly, instant).state == "success"

    bodies = sorted(request.body for request in webhook.requests)
    assert bodies == sorted([
        b'{"text":"Hey, Ada Lovelace happy work anniversary"}',
        ('{"message":"Hey, Ada Lovelace it\'s your birthday","notification_id":1,"user_id":1,"occasion":"birthday",'
         f'"occasion_date":"{instant.date().isoformat()}"}}').encode(),
    ])
    assert [row[2] for row in notifications(db)] == ["sent", "sent"]


# The users of the language test: id, first and last name, the locale column's value, and the message expected.
SCRIPTS = [
    (1, "Ada", "Lovelace", None, "Happy birthday, Ada!"),
    (2, "Jürgen", "Groß", "de", "Alles Gute zum Geburtstag, Jürgen!"),
    (3, "João", "Silva", "pt-BR", "Feliz aniversário, João! 🎉"),
    (4, "Inês", "Zoe\u0308", "pt-PT", "Parabéns, Inês Zoe\u0308!"),  # pt-PT falls back to pt; the mark stays
    (5, "李", "小龍", "zh-Hant-TW", "生日快樂，李 小龍！"),  # zh-Hant-TW → zh-Hant
    (6, "דוד", "כהן", "he", "יום הולדת שמח, דוד כהן!"),
    (7, "مريم", "\u202eevil", "ar", "عيد ميلاد سعيد يا مريم evil"),  # the override is stripped, the letters stay
    (8, "Kim", "👩\u200d💻", "not a tag!!", "Happy birthday, Kim!"),  # no tag: the default text, nobody else hurt
    (9, "Pat", "Doe", "PT_br", "Feliz aniversário, Pat! 🎉"),  # tags compare case-insensitively, _ as -
    (10, "Ann", "Lee", "x" * 100, "Happy birthday, Ann!"),
]
TEXTS = {"message": "Happy birthday, {first_name}!",
         "messages": {"de": "Alles Gute zum Geburtstag, {first_name}!", "pt-BR": "Feliz aniversário, {first_name}! 🎉",
                      "pt": "Parabéns, {name}!", "zh-Hant": "生日快樂，{name}！", "he": "יום הולדת שמח, {name}!",
                      "ar": "عيد ميلاد سعيد يا {name}"}}


def test_messages_go_out_in_the_users_language_and_any_script_round_trips_byte_for_byte(db, webhook, dags,
                                                                                        monkeypatch,
                                                                                        team_view) -> None:
    hourly, _ = dags
    instant = due_now(monkeypatch)
    set_settings(monkeypatch, users_relation=team_view, locale_column="lang", payload="slack",
                 occasions={"birthday": TEXTS})
    born = instant.date().replace(year=1990)
    insert_users(db, [User(user_id, born, "UTC", first, last) for user_id, first, last, _, _ in SCRIPTS])
    preferences(db, [(user_id, lang, False, None) for user_id, _, _, lang, _ in SCRIPTS])

    assert hourly_run_for(hourly, instant).state == "success"

    with db.cursor() as cursor:
        cursor.execute("SELECT webhook_id::text, user_id FROM notifications")
        users_by_webhook_id = dict(cursor.fetchall())
    received = {users_by_webhook_id[request.headers["webhook-id"]]: request for request in webhook.requests}
    assert {user_id: request.json["text"] for user_id, request in received.items()} == {
        user_id: message for user_id, _, _, _, message in SCRIPTS}
    for user_id, _, _, _, message in SCRIPTS:  # as UTF-8 on the wire, not escaped
        assert received[user_id].body == b'{"text":"' + message.encode("utf-8") + b'"}'
    assert {row[2] for row in notifications(db)} == {"sent"}


def test_a_third_occasion_is_configuration_and_a_date_column(db, webhook, dags, monkeypatch, team_view) -> None:
    hourly, _ = dags
    instant = due_now(monkeypatch)
    name_day = {"date_column": "name_day", "message": "Wszystkiego najlepszego z okazji imienin, {first_name}!",
                "messages": {"en": "Happy name day, {first_name}!"},
                "payload": {"custom": {"kind": "{occasion}", "greeting": "{message}", "since": "{years}"}}}
    set_settings(monkeypatch, occasions={"name_day": name_day}, locale_column="lang")

    # On the bundled users table, which has no such column, every DAG stops at its schema check, naming it.
    from birthday_pipeline.edge.variables import read_settings
    from birthday_pipeline.schema.check import schema_problems
    from birthday_pipeline.settings import Relation

    settings = read_settings()
    problems = schema_problems(db, Relation(("users",)), settings.occasion_registry.date_columns, conn_id="birthday_db",
                               locale_column=settings.locale_column)
    assert any("has no column name_day" in problem for problem in problems)
    assert any("has no column lang, which locale_column" in problem for problem in problems)
    insert_users(db, [User(1, date(1980, 1, 1) if instant.month != 1 else date(1980, 7, 1), "UTC", "Ola", "Nowak")])
    assert hourly_run_for(hourly, instant).state == "failed"
    assert webhook.requests == []

    # On the team's view, which has it, the name day is planned and sent like any occasion.
    set_settings(monkeypatch, users_relation=team_view)
    insert_users(db, [User(2, date(1981, 1, 1) if instant.month != 1 else date(1981, 7, 1), "UTC", "Sam", "Lee")])
    preferences(db, [(1, "pl", False, instant.date().replace(year=2000)),
                     (2, "en-GB", False, instant.date().replace(year=2010))])

    assert hourly_run_for(hourly, instant).state == "success"

    assert sorted(request.body.decode() for request in webhook.requests) == [
        f'{{"kind":"name_day","greeting":"Happy name day, Sam!","since":"{instant.year - 2010}"}}',
        f'{{"kind":"name_day","greeting":"Wszystkiego najlepszego z okazji imienin, Ola!",'
        f'"since":"{instant.year - 2000}"}}',
    ]
    assert notifications(db) == [(1, "name_day", "sent", None), (2, "name_day", "sent", None)]


def test_an_opted_out_user_is_cancelled_at_planning_and_shown_so_on_the_page(db, webhook, dags, monkeypatch,
                                                                              team_view) -> None:
    hourly, _ = dags
    instant = due_now(monkeypatch)
    set_settings(monkeypatch, users_relation=team_view, opt_out_column="no_announcements")
    born = instant.date().replace(year=1990)
    insert_users(db, [User(1, born, "UTC", "Ada", "Lovelace"), User(2, born, "UTC", "Grace", "Hopper")])
    preferences(db, [(1, None, True, None)])

    assert hourly_run_for(hourly, instant).state == "success"

    assert [request.json["user_id"] for request in webhook.requests] == [2]
    reason = "user opted out (no_announcements is true)"
    assert notifications(db) == [(1, "birthday", "cancelled", reason), (2, "birthday", "sent", None)]

    from birthday_pipeline.edge.variables import read_settings
    from birthday_pipeline.operate.report import Day, day_report, user_report

    settings = read_settings()
    report = day_report(db, Day.of(instant.date(), ZoneInfo("UTC")), settings)
    assert report["counts"]["birthday"]["cancelled"] == 1
    assert [(problem["user_id"], problem["status"], problem["reason"]) for problem in report["problems"]] == [
        (1, "cancelled", reason)]
    upcoming = user_report(db, 1, settings, datetime.now(UTC))["next"]
    assert [(entry["occasion"], entry["status"], entry["reason"]) for entry in upcoming] == [
        ("birthday", "cancelled", reason)]

    # Opting in again re-plans the row like any change of the user's data: the next run of the hour sends it.
    with db.cursor() as cursor:
        cursor.execute("UPDATE team_preferences SET no_announcements = false WHERE user_id = 1")
    db.commit()
    assert hourly_run_for(hourly, instant).state == "success"
    assert sorted(request.json["user_id"] for request in webhook.requests) == [1, 2]


def test_an_opt_out_after_planning_is_honoured_at_the_claim_and_only_a_forced_resend_sends(
        db, webhook, dags, monkeypatch, team_view, app_database_url) -> None:
    from birthday_pipeline.deliver.delivery import deliver_batch
    from birthday_pipeline.edge.variables import read_settings
    from birthday_pipeline.plan.planning import ReleaseBatch, Window, plan_window
    from tests.integration.test_delivery import sender_for

    _, resend = dags
    instant = due_now(monkeypatch)
    set_settings(monkeypatch, users_relation=team_view, opt_out_column="no_announcements")
    settings = read_settings()
    born = instant.date().replace(year=1990)
    insert_users(db, [User(1, born, "UTC", "Ada", "Lovelace"), User(2, born, "UTC", "Grace", "Hopper")])
    hour = instant.replace(minute=0, second=0)
    plan_window(db, Window(hour, hour + timedelta(hours=1)), settings)
    assert [row[2] for row in notifications(db)] == ["scheduled", "scheduled"]
    preferences(db, [(1, None, True, None)])  # user 1 opts out between planning and sending

    summary = deliver_batch(db, ReleaseBatch(instant, 1, 2, 2), sender_for(webhook, app_database_url, settings))

    assert (summary.claimed, summary.sent, summary.skipped) == (2, 1, 1)
    assert [request.json["user_id"] for request in webhook.requests] == [2]
    reason = "user opted out (no_announcements is true)"
    assert notifications(db) == [(1, "birthday", "cancelled", reason), (2, "birthday", "sent", None)]

    conf = {"user_ids": [1], "occasion": "birthday", "date": instant.date().isoformat(), "dry_run": False}
    assert resend.test(run_conf=conf).state == "success"
    assert len(webhook.requests) == 1  # refused: the user opted out
    assert notifications(db)[0][2] == "cancelled"

    assert resend.test(run_conf={**conf, "force": True}).state == "success"
    assert [request.json["user_id"] for request in webhook.requests] == [2, 1]
    assert json.loads(webhook.requests[1].body)["message"] == "Hey, Ada Lovelace it's your birthday"
    assert notifications(db)[0][2] == "sent"


def test_the_schema_check_names_an_opt_out_column_that_is_missing_or_not_boolean(db, team_view) -> None:
    from birthday_pipeline.schema.check import schema_problems
    from birthday_pipeline.settings import Relation

    def problems(relation: str, opt_out_column: str) -> list[str]:
        return schema_problems(db, Relation((relation,)), ["birthday", "hired_on"], conn_id="birthday_db",
                               opt_out_column=opt_out_column)

    assert problems(team_view, "no_announcements") == []
    assert problems(team_view, "opted_out") == [
        "the users relation team_users has no column opted_out, which opt_out_column in Variable birthday_settings "
        "names: add it, or remove the setting (README, Customise)"]
    assert problems(team_view, "lang") == [
        "in the users relation team_users, lang (opt_out_column) is text, not boolean: cast it in the view "
        "(README, Customise)"]
