"""What the admin can afford to read on a large table: the planner's estimates (of a
table's rows, of a query's cost), and statements cut short by a time limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import OperationalError, connections, transaction
from django.db.models import QuerySet

from djqueue.db import sql


def estimated_rows(table: str, using: str) -> int | None:
    """About how many rows ``table`` holds, or None when the server has no estimate."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql.ESTIMATE, [table])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class Plan:
    """What the planner expects of a query: its cost and the rows it returns."""

    cost: float
    rows: int


def plan(queryset: QuerySet[Any]) -> Plan:
    """The planner's cost and row estimate for ``queryset`` (nothing is run)."""
    statement, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql.EXPLAIN.format(statement=statement), params)
        found = cursor.fetchone()[0]
    top = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
    return Plan(float(top["Total Cost"]), int(top["Plan Rows"]))


@dataclass
class Limit:
    """Whether the statements under a :func:`time_limit` ran out of time."""

    exceeded: bool = False


# SQLSTATE of a statement cancelled by statement_timeout.
QUERY_CANCELED = "57014"


@contextmanager
def time_limit(using: str, milliseconds: int) -> Iterator[Limit]:
    """Statements on ``using`` inside get ``milliseconds`` each; one that runs out is
    cancelled, the block left, and ``exceeded`` set (any other error is raised)."""
    limit = Limit()
    connection = connections[using]
    try:
        with transaction.atomic(using=using):
            with connection.cursor() as cursor:
                cursor.execute(sql.STATEMENT_TIMEOUT)
                before = cursor.fetchone()[0]
                # Local to the transaction (a pooler's server connection never keeps
                # it); rolled back with it, or set back for what follows.
                cursor.execute(sql.SET_STATEMENT_TIMEOUT, [str(milliseconds)])
            yield limit
            with connection.cursor() as cursor:
                cursor.execute(sql.SET_STATEMENT_TIMEOUT, [before])
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != QUERY_CANCELED:
            raise
        limit.exceeded = True
