"""Scheduler leadership: one scheduler fires slots, the others wait to take over."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from djqueue.db import listener, periodic


class Link:
    """The scheduler's own connection: holds the leader lock and LISTENs for changes.

    One connection does both, so that losing it loses leadership and notifications
    together, and a new leader always listens.
    """

    def __init__(self) -> None:
        self._conn: psycopg.Connection[Any] | None = None
        self.leading = False

    def try_lead(self) -> bool:
        """Become the leader if nobody is; True if this process now leads."""
        if self.leading:
            return True
        if self._conn is None or self._conn.closed:
            self._conn = listener.connect()
            periodic.listen(self._conn)
        self.leading = periodic.try_lead(self._conn)
        return self.leading

    def check(self) -> None:
        """Raise psycopg.OperationalError when the connection (so the lock) is gone."""
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("the scheduler's connection is closed")
        periodic.ping(self._conn)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a change notification; True if one came."""
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("the scheduler's connection is closed")
        heard = False
        if timeout > 0:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                heard = True
        # Drain the ones that arrived together, without waiting.
        for _ in self._conn.notifies(timeout=0):
            heard = True
        return heard

    def close(self) -> None:
        """Close the connection, giving up leadership."""
        self.leading = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                conn.close()
