"""The SQL loader inlines the shared fragments: the condition that makes a notification due is written once
(include/sql/shared/due.sql) and reaches every statement that names it, parameters and all."""

from __future__ import annotations

from pathlib import Path

from birthday_pipeline.db.statements import load_sql

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"
STATEMENTS = sorted(path.relative_to(SQL_DIR).with_suffix("").as_posix() for path in SQL_DIR.rglob("*.sql"))


def test_no_statement_keeps_a_fragment_placeholder() -> None:
    assert [name for name in STATEMENTS if "{shared/" in load_sql(name)] == []


def test_the_due_condition_reaches_each_statement_that_selects_due_rows() -> None:
    lease_live = "EXISTS (SELECT 1 FROM claim_leases AS l WHERE l.claim_token = n.claim_token AND l.expires_at > now())"
    due = load_sql("deliver/claim")
    assert f"(n.status = 'sending' AND n.send_at <= %(now)s AND NOT {lease_live})" in due
    for parameter in ("now", "scheduled_due_by", "max_lateness", "max_attempts"):
        assert f"%({parameter})s" in due
    assert "-- The condition that makes" not in due  # the fragment's own comment stays in its file
    for name in ("sweep/due_batches", "sweep/cancel_orphans", "sweep/expire", "resend/claim", "resend/look_up"):
        assert lease_live in load_sql(name), name
    # Inlined at the placeholder's indentation: the statement reads as if written out.
    assert "\n        AND (\n            n.send_at > %(now)s - %(max_lateness)s::interval\n" in due
    assert "\n        )\n    ORDER BY n.id\n" in due


def test_both_claims_and_the_second_look_read_the_same_columns() -> None:
    lines = load_sql("shared/claimed_row").strip().splitlines()
    columns = "\n".join(line for line in lines if not line.startswith("--"))
    for name in ("deliver/claim", "resend/claim"):
        assert load_sql(name).rstrip().endswith(f"\nRETURNING {columns}"), name
    assert f"SELECT DISTINCT ON (n.id) {columns}\nFROM notifications AS n\n" in load_sql("deliver/look_again")
