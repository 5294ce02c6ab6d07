"""Scheduler leadership: one scheduler fires slots, the others wait to take over.

The leader lock lives in a transaction the leader keeps open on a connection of its own
to ``DATABASES``, so that it holds through a transaction-mode pooler as well as on a
direct connection (why: ``TRY_LEAD`` in :mod:`djqueue.db.sql.schedules`). Change
notifications come on a second connection, opened when the scheduler takes the lead:
``LISTEN`` delivers nothing to a session inside a transaction, and it needs a direct
connection (``LISTEN_DSN``) behind such a pooler. Without a working one, the leader reads
the periodic tasks every ``BEAT_MAX_INTERVAL_SECONDS`` all the same.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import psycopg

from djqueue.db import listener, periodic

logger = logging.getLogger("djqueue.beat")

# Seconds between attempts to open the LISTEN connection again after one failed,
# doubling after each failure up to the longest: an attempt at a host that does not
# answer holds the leader up to CONNECT_TIMEOUT_SECONDS, so it is made rarely.
LISTEN_RETRY_SECONDS = 10.0
LISTEN_RETRY_LONGEST_SECONDS = 300.0


class Link:
    """The scheduler's own connections: the leader lock, and change notifications."""

    def __init__(self) -> None:
        self._lock: psycopg.Connection[Any] | None = None
        self._listen: psycopg.Connection[Any] | None = None
        self._listen_retry_at = 0.0
        self._listen_retry = LISTEN_RETRY_SECONDS
        self._listen_failed = False
        self.leading = False

    def try_lead(self) -> bool:
        """Become the leader if nobody is; True if this process now leads.

        A new leader listens from now on (or polls, if it cannot).
        """
        if self.leading:
            return True
        if self._lock is None or self._lock.closed:
            self._lock = periodic.leader_connection()
        self.leading = periodic.try_lead(self._lock)
        if self.leading:
            self._listen_retry_at = 0.0
            self._open_listen()
        return self.leading

    def check(self) -> None:
        """Raise psycopg.Error when the lock's connection (so the lock) is gone."""
        if self._lock is None or self._lock.closed:
            raise psycopg.OperationalError("the scheduler's connection is closed")
        periodic.ping(self._lock)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a change notification; True if one came,
        or if notifications may have been missed (the LISTEN connection was made anew)."""
        if self._listen is None or self._listen.closed:
            if self._open_listen():
                return True
            time.sleep(max(0.0, timeout))
            return False
        try:
            return self._heard(self._listen, timeout)
        except psycopg.Error as exc:
            self._listen_lost(exc)
            return True

    def close(self) -> None:
        """Close both connections, giving up leadership."""
        self.leading = False
        for conn in (self._lock, self._listen):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
        self._lock = self._listen = None

    @staticmethod
    def _heard(conn: psycopg.Connection[Any], timeout: float) -> bool:
        heard = False
        if timeout > 0:
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                heard = True
        # Drain the ones that arrived together, without waiting.
        for _ in conn.notifies(timeout=0):
            heard = True
        return heard

    def _open_listen(self) -> bool:
        """Open the LISTEN connection unless a failed attempt was too recent; whether
        it is open now."""
        if time.monotonic() < self._listen_retry_at:
            return False
        try:
            conn = listener.connect()
        except psycopg.Error as exc:
            self._listen_lost(exc)
            return False
        try:
            periodic.listen(conn)
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                conn.close()
            self._listen_lost(exc)
            return False
        self._listen = conn
        self._listen_retry = LISTEN_RETRY_SECONDS
        if self._listen_failed:
            self._listen_failed = False
            logger.warning("Beat: listening for changes to periodic tasks again.")
        return True

    def _listen_lost(self, exc: BaseException) -> None:
        """Notifications are unavailable: poll, and try again later."""
        if self._listen is not None:
            with contextlib.suppress(psycopg.Error):
                self._listen.close()
            self._listen = None
        self._listen_retry_at = time.monotonic() + self._listen_retry
        if not self._listen_failed:
            self._listen_failed = True
            logger.warning(
                "Beat: cannot LISTEN for changes to periodic tasks (%s); reading them "
                "every BEAT_MAX_INTERVAL_SECONDS instead, and trying again in %gs.",
                " ".join(str(exc).split()) or type(exc).__name__,
                self._listen_retry,
            )
        self._listen_retry = min(2 * self._listen_retry, LISTEN_RETRY_LONGEST_SECONDS)
