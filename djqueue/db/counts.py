"""Row counts the admin can afford on a large table: the planner's estimate."""

from __future__ import annotations

from django.db import connections

from djqueue.db import sql


def estimated_rows(table: str, using: str) -> int | None:
    """About how many rows ``table`` holds, or None when the server has no estimate."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql.ESTIMATE, [table])
        row = cursor.fetchone()
    return None if row is None else int(row[0])
