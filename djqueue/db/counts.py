"""Row counts the admin can afford on a large table: the planner's estimate."""

from __future__ import annotations

from django.db import connections

# The planner's row estimate for a table, kept by ANALYZE and autovacuum: no scan.
ESTIMATE = "SELECT reltuples::bigint FROM pg_class WHERE relname = %s"


def estimated_rows(table: str, using: str) -> int | None:
    """About how many rows ``table`` holds, or None when the server has no estimate."""
    with connections[using].cursor() as cursor:
        cursor.execute(ESTIMATE, [table])
        row = cursor.fetchone()
    return None if row is None else int(row[0])
