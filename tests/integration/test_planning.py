"""Planning against real PostgreSQL: migrations, release batches and what a second plan may change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg2
import pytest

from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.deliver.claims import due_parameters
from birthday_pipeline.plan.planning import ReleaseBatch, TooManyInstants, Window, hourly_window, plan_window
from birthday_pipeline.schema.files import pending_migrations
from birthday_pipeline.schema.runner import apply_migrations
from birthday_pipeline.settings import Settings

pytestmark = pytest.mark.core

# 09:00 on 15 December in London, UTC and Lisbon is 09:00Z; in Lagos 08:00Z.
WINDOW = Window(datetime(2026, 12, 15, 8, tzinfo=UTC), datetime(2026, 12, 15, 10, tzinfo=UTC))


def add_users(db, *users: tuple[int, date, str | None]) -> None:
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO users (id, first_name, last_name, birthday, timezone) VALUES (%s, 'F', 'L', %s, %s)",
            users,
        )
    db.commit()


def test_migrations_apply_once(app_database_url: str) -> None:
    conn = psycopg2.connect(app_database_url)
    try:
        assert apply_migrations(conn) == []
        with conn.cursor() as cursor:
            cursor.execute("SELECT name FROM birthday_schema_migrations ORDER BY name")
            applied = [row[0] for row in cursor.fetchall()]
        assert applied == pending_migrations(set()) and applied[0] == "0001_users.sql"
    finally:
        conn.close()


def test_release_batches_group_rows_by_instant_and_split_them_by_batch_size(db) -> None:
    add_users(
        db,
        *[(user_id, date(1980, 12, 15), zone) for user_id, zone in
          enumerate(["Europe/London", "UTC", None, "Europe/Lisbon", "Africa/Lagos", "Africa/Lagos"], start=1)],
        (7, date(1980, 12, 16), "UTC"),
    )
    result = plan_window(db, WINDOW, Settings(batch_size=2))
    nine, eight = datetime(2026, 12, 15, 9, tzinfo=UTC), datetime(2026, 12, 15, 8, tzinfo=UTC)
    assert (result.upserted.inserted, result.upserted.replanned_ids) == (6, [])
    assert result.batches == [
        ReleaseBatch(eight, 5, 6, 2),
        ReleaseBatch(nine, 1, 2, 2),
        ReleaseBatch(nine, 3, 4, 2),
    ]
    assert [ReleaseBatch.from_json(batch.to_json()) for batch in result.batches] == result.batches


def test_a_window_never_has_more_release_batches_than_max_map_length(db) -> None:
    add_users(db, *[(user_id, date(1980, 12, 15), zone) for user_id, zone in
                    enumerate(["UTC"] * 5 + ["Africa/Lagos"] * 3, start=1)])

    batches = plan_window(db, WINDOW, Settings(batch_size=1), max_batches=4).batches

    assert len(batches) <= 4
    assert sum(batch.size for batch in batches) == 8
    with pytest.raises(TooManyInstants, match=r"2 release batches .* max_map_length \(1\)"):
        plan_window(db, WINDOW, Settings(batch_size=1), max_batches=1)
    with db.cursor() as cursor:  # still planned, for the sweep
        cursor.execute("SELECT count(*) FROM notifications WHERE status = 'scheduled'")
        assert cursor.fetchone()[0] == 8


def init_plans(node: dict) -> list[str]:
    """The subplans of an ``EXPLAIN (FORMAT JSON)`` plan node and its children that run once per statement, other
    than its CTEs (which JSON lists as init plans too)."""
    own = [node["Subplan Name"]] if (node.get("Parent Relationship") == "InitPlan"
                                     and not node["Subplan Name"].startswith("CTE ")) else []
    return own + [name for child in node.get("Plans", []) for name in init_plans(child)]


@pytest.mark.parametrize("statement", ["plan/release_batches", "sweep/due_batches"])
def test_the_batch_size_is_computed_once_whatever_the_estimates(db, statement: str) -> None:
    # As a CTE cross-joined to the rows, the size was the inner side of a nested loop whenever the planner expected
    # few rows (rows just upserted, not yet analyzed): the count of 1 M rows at one instant, again for each of them.
    parameters = {**due_parameters(Settings(), WINDOW.end, timedelta(0)), "occasions": ["birthday"],
                  "window_start": WINDOW.start, "window_end": WINDOW.end, "batch_size": 2000, "max_batches": 1024}
    with db.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + load_sql(statement), parameters)
        (plan,) = cursor.fetchone()[0]
    db.rollback()
    assert init_plans(plan["Plan"]), plan


def test_replanning_moves_a_scheduled_row_and_leaves_a_finished_one(db) -> None:
    add_users(db, (1, date(1980, 12, 15), "UTC"), (2, date(1980, 12, 15), "UTC"), (3, date(1980, 12, 15), "Nowhere"))
    plan_window(db, WINDOW, Settings())
    with db.cursor() as cursor:
        cursor.execute("UPDATE notifications SET status = 'sent', sent_at = send_at WHERE user_id = 2")
        cursor.execute("UPDATE users SET timezone = 'Africa/Lagos' WHERE id IN (1, 2)")
        cursor.execute("UPDATE users SET timezone = 'Europe/Lisbon' WHERE id = 3")
    db.commit()

    second = plan_window(db, WINDOW, Settings())

    # User 1 (notification 1) moved to 08:00Z and user 3 (notification 3) became valid; user 2 was sent already.
    assert (second.upserted.inserted, second.upserted.replanned_ids) == (0, [1, 3])
    with db.cursor() as cursor:
        cursor.execute("SELECT user_id, send_at, status, last_error FROM notifications ORDER BY user_id")
        rows = cursor.fetchall()
    assert rows == [
        (1, datetime(2026, 12, 15, 8, tzinfo=UTC), "scheduled", None),
        (2, datetime(2026, 12, 15, 9, tzinfo=UTC), "sent", None),
        (3, datetime(2026, 12, 15, 9, tzinfo=UTC), "scheduled", None),
    ]
    assert plan_window(db, WINDOW, Settings()).upserted.count == 0


def test_an_hourly_run_owns_the_hour_after_its_own() -> None:
    window = hourly_window(datetime(2026, 12, 15, 7, 42, 10, tzinfo=UTC))
    assert window == Window(datetime(2026, 12, 15, 8, tzinfo=UTC), datetime(2026, 12, 15, 9, tzinfo=UTC))
