"""The cursor every statement of the data layer's job calls runs on: Django's connection
for the queue database (so: in the caller's transaction), with the statements prepared on
the server when ``PREPARED_STATEMENTS`` says so (docs/design.md, "Prepared statements")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from djqueue.core import conf
from djqueue.db import guard

# Automatic preparation stays off for everything else on the connection: only the
# broker's own statements ask for it, explicitly.
_NEVER = 2**31 - 1


class _PreparingCursor(CursorWrapper):
    """Django's cursor wrapper (error translation, execute wrappers) whose statements are
    prepared on the server, so that the hot queue statements are planned once per
    connection instead of once per call."""

    def _execute(self, sql: str, params: Any, *ignored_wrapper_args: Any) -> Any:
        self.db.validate_no_broken_transaction()
        with self.db.wrap_database_errors:
            return self.cursor.execute(sql, params, prepare=True)


class _PreparingDebugCursor(CursorDebugWrapper, _PreparingCursor):
    """The same, logging queries as Django does when DEBUG is on or a test counts them."""


@contextmanager
def queue_cursor() -> Iterator[CursorWrapper]:
    """A cursor on the queue database's Django connection (so: in the caller's transaction).

    A statement that finds djqueue's tables missing or out of date raises
    ``MigrationsMissing``, which says to run ``migrate``; one that loses the connection
    outside a transaction drops it, so that the next call reconnects
    (:mod:`djqueue.db.guard`).
    """
    with guard.statements(ours=True):
        db = connections[conf.database()]
        if not conf.prepared_statements()[0]:
            with db.cursor() as cursor:
                yield cursor
            return
        db.ensure_connection()
        db.validate_thread_sharing()
        raw = db.connection
        if raw.prepare_threshold is None:
            raw.prepare_threshold = _NEVER
        wrapper = _PreparingDebugCursor if db.queries_logged else _PreparingCursor
        cursor = wrapper(psycopg.Cursor(raw), db)
        try:
            yield cursor
        finally:
            cursor.close()
