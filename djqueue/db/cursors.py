"""The cursor every statement of the data layer's job calls runs on: Django's connection
for the queue database (so: in the caller's transaction), with the statements prepared on
the server when ``PREPARED_STATEMENTS`` says so (docs/design.md, "Prepared statements")."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from djqueue.core import conf
from djqueue.db import guard

logger = logging.getLogger("djqueue.broker")

# Automatic preparation stays off for everything else on the connection: only the
# broker's own statements ask for it, explicitly.
_NEVER = 2**31 - 1

# What a server connection shared between clients says of prepared statements: one that
# another client prepared there ("already exists"), or ours, prepared on a server
# connection this one no longer is ("does not exist"). A transaction-mode pooler that
# does not keep them per client (PgBouncer before 1.21, or without
# max_prepared_statements) does this.
_LOST_PREPARED = (
    psycopg.errors.DuplicatePreparedStatement,
    psycopg.errors.InvalidSqlStatementName,
)


class _Refusal:
    """Whether this process has found its prepared statements refused (see
    :data:`_LOST_PREPARED`); from then on it sends its statements unprepared."""

    def __init__(self) -> None:
        self.reason = ""
        self.lock = threading.Lock()

    def record(self, error: psycopg.Error) -> None:
        with self.lock:
            if self.reason:
                return
            self.reason = str(error).splitlines()[0]
        logger.warning(
            "The database refused a prepared statement (%s): DATABASES goes through a "
            "transaction-mode pooler that does not keep them. This process sends its "
            "statements unprepared from now on; set DJQUEUE['PREPARED_STATEMENTS'] = False "
            "(or LISTEN_DSN, which turns them off) to start that way.",
            self.reason,
        )


refusal = _Refusal()


class _PreparingCursor(CursorWrapper):
    """Django's cursor wrapper (error translation, execute wrappers) whose statements are
    prepared on the server, so that the hot queue statements are planned once per
    connection instead of once per call."""

    def _execute(self, sql: str, params: Any, *ignored_wrapper_args: Any) -> Any:
        self.db.validate_no_broken_transaction()
        with self.db.wrap_database_errors:
            try:
                return self.cursor.execute(sql, params, prepare=not refusal.reason)
            except _LOST_PREPARED as error:
                refusal.record(error)
                if self.db.in_atomic_block:
                    raise  # the transaction is lost; the caller's next try goes unprepared
                return self.cursor.execute(sql, params, prepare=False)


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
        if refusal.reason or not conf.prepared_statements()[0]:
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
