"""The notification statuses the code knows (``birthday_pipeline.status.Status``) are the ones the schema allows,
and every status the SQL names is one of them."""

from __future__ import annotations

import re
from pathlib import Path

from birthday_pipeline.status import Status

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"
# A status column compared with, assigned or tested against quoted literals: status = 'sent', n.status <> 'x',
# status IN ('a', 'b'), SET status = 'failed'.
STATUS_CLAUSE = re.compile(r"\bstatus\s*(?:=|<>|!=|(?:NOT\s+)?IN\b)\s*\(?\s*('[^']*'(?:\s*,\s*'[^']*')*)",
                           re.IGNORECASE)
QUOTED = re.compile(r"'([^']*)'")


def test_the_check_constraint_allows_exactly_the_status_values(db) -> None:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'notifications'::regclass AND contype = 'c'"
            " AND pg_get_constraintdef(oid) ~ '\\(status\\s*=\\s*ANY|\\(\\(status\\)::text = ANY|status IN'"
        )
        [[definition]] = cursor.fetchall()
    allowed = set(QUOTED.findall(definition))
    assert allowed == set(Status), definition


def test_every_status_the_sql_names_is_a_status_value() -> None:
    named: dict[str, set[str]] = {}
    for path in sorted(SQL_DIR.rglob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        for literals in STATUS_CLAUSE.findall(text):
            for literal in QUOTED.findall(literals):
                named.setdefault(literal, set()).add(path.relative_to(SQL_DIR).as_posix())
    assert {"scheduled", "sending", "sent", "failed"} <= set(named), named
    assert {literal: files for literal, files in named.items() if literal not in set(Status)} == {}
