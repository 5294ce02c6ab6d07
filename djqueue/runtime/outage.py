"""Database trouble in the worker: a lost connection is waited out, a refusal is not.

A lost connection (``OperationalError``, ``InterfaceError``: the statement may have
committed) makes the worker back off and try again; any other ``DatabaseError`` means
nothing was written, and the caller decides what to do about it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError

from djqueue.runtime.clock import Clock
from djqueue.runtime.store import Store

logger = logging.getLogger("djqueue.worker")

T = TypeVar("T")
DB_DOWN = (OperationalError, InterfaceError)
# Every failure of a statement: Django's InterfaceError (a connection already closed) is
# not a DatabaseError, and must not escape a handler that means "the statement failed".
DB_ERRORS = (DatabaseError, InterfaceError)


class Outage:
    """Counts consecutive lost connections and backs off between tries.

    ``stopping`` cuts a back-off short; once it is set, only ``hard_stop`` does (a
    draining worker must not spin, and a cold shutdown must not wait for it).
    """

    def __init__(
        self, store: Store, clock: Clock, stopping: threading.Event, hard_stop: threading.Event
    ) -> None:
        self.store = store
        self.clock = clock
        self.stopping = stopping
        self.hard_stop = hard_stop
        self.failures = 0

    def attempt(self, fn: Callable[..., T], *args: object) -> T | None:
        """Call ``fn``; on a lost database log it, back off, and return None."""
        try:
            value = fn(*args)
        except DB_DOWN as exc:
            self.down(exc)
            return None
        self.up()
        return value

    def until_up(self, fn: Callable[..., T], *args: object) -> T:
        """Call ``fn`` until it gets through a lost database (its errors otherwise raise)."""
        while True:
            value = self.attempt(fn, *args)
            if value is not None or not self.failures:
                return value  # type: ignore[return-value]

    def down(self, exc: BaseException) -> None:
        """The database was lost: log, reset the connection, back off."""
        self.failures += 1
        delay = min(5.0, 0.25 * 2**self.failures)
        logger.error(
            "Database unavailable (%s); retrying in %.1fs. Running jobs carry on.",
            describe(exc),
            delay,
        )
        self.store.reset()
        if self.stopping.is_set():
            # Draining: do not spin, but a cold shutdown must not wait for us.
            self.clock.wait(self.hard_stop, delay)
        else:
            self.clock.wait(self.stopping, delay)

    def up(self) -> None:
        """A statement got through: the outage, if any, is over."""
        if self.failures:
            logger.warning("Database reachable again.")
            self.failures = 0


def describe(exc: BaseException) -> str:
    """An error on one line, for a log message or a stored reason."""
    return " ".join(str(exc).split()) or type(exc).__name__
