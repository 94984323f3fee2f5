"""A users relation whose name holds a ``%``, a quote and a space, under both drivers, against real PostgreSQL.

Composed statements are executed with bound parameters, so the driver reads them again for ``%(name)s``
placeholders: a ``%`` inside the relation's quoted name must reach PostgreSQL as itself, not as a placeholder.
Planning, the claim, the sweep, the resend look-up and the Birthdays page's user report all name the relation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import psycopg2
import pytest
from psycopg2 import sql

from birthday_pipeline.deliver.claims import claim_batch
from birthday_pipeline.operate.report import user_report
from birthday_pipeline.operate.resend import ResendRequest, resend
from birthday_pipeline.plan.planning import Window, plan_window
from birthday_pipeline.plan.sweep import sweep_late_window
from birthday_pipeline.rules.occasions import BIRTHDAY
from birthday_pipeline.settings import Settings

SCHEMA, TABLE = "team %(x)s", 'odd%users "quoted" name'
SETTING = '"team %(x)s"."odd%users ""quoted"" name"'
NINE = datetime(2026, 12, 15, 9, tzinfo=UTC)
WINDOW = Window(NINE - timedelta(hours=1), NINE + timedelta(hours=1))


@pytest.fixture
def odd_relation(db: Any) -> Iterator[Settings]:
    """A copy of ``users`` under the odd name, holding user 1 (birthday on 15 December, UTC); its settings."""
    relation = sql.Identifier(SCHEMA, TABLE)
    with db.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        cursor.execute(sql.SQL("CREATE TABLE {} (LIKE users INCLUDING ALL)").format(relation))
        cursor.execute(sql.SQL("INSERT INTO {} (id, first_name, last_name, birthday, timezone)"
                               " VALUES (1, 'Ada', 'Lovelace', '1980-12-15', 'UTC')").format(relation))
    db.commit()
    settings = Settings.from_variable_text(json.dumps({"users_relation": SETTING}))
    assert settings.users_relation.parts == (SCHEMA, TABLE)
    try:
        yield settings
    finally:
        db.rollback()
        with db.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
        db.commit()


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_every_composed_statement_reads_a_relation_named_with_a_percent_sign(
        app_database_url: str, odd_relation: Settings, driver: str) -> None:
    settings = odd_relation
    conn = (psycopg2 if driver == "psycopg2" else psycopg).connect(app_database_url)
    try:
        planned = plan_window(conn, WINDOW, settings)
        assert planned.upserted.inserted == 1 and [batch.size for batch in planned.batches] == [1]

        claim = claim_batch(conn, planned.batches[0], settings, NINE, timedelta(0), None)
        assert [(row.user_id, row.first_name) for row in claim.rows] == [(1, "Ada")]
        conn.rollback()

        swept = sweep_late_window(conn, NINE + timedelta(hours=1), settings)
        assert swept.orphans_cancelled == 0
        conn.rollback()

        looked_up = resend(conn, ResendRequest([1], BIRTHDAY, date(2026, 12, 15)), settings, None, NINE)
        assert [decision.user_id for decision in looked_up.decisions] == [1]

        report = user_report(conn, 1, settings, NINE - timedelta(days=1))
        assert report is not None and report["next"][0]["send_at_utc"] == NINE.isoformat()
        assert user_report(conn, 2, settings, NINE) is None
    finally:
        conn.close()
