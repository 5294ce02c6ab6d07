"""A dedicated connection that LISTENs for notifications, reconnecting when it drops."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import connections
from psycopg import conninfo
from psycopg import sql as pgsql

from djqueue import conf, sessions

logger = logging.getLogger("djqueue.listener")

JOBS_CHANNEL = "djqueue"
DONE_CHANNEL = "djqueue_done"
# Payload: the id of a running job that revoke(terminate=True) asks to stop.
REVOKE_CHANNEL = "djqueue_revoke"
# Payload: a queue that was paused or resumed.
PAUSE_CHANNEL = "djqueue_pause"


def connect(autocommit: bool = True) -> psycopg.Connection[Any]:
    """Open a plain psycopg connection to the queue database (``LISTEN_DSN`` if set).

    It gets the guards of :mod:`djqueue.sessions`: the keepalives and user timeout
    that the DSN or the database's ``OPTIONS`` do not set, and the session settings.
    """
    dsn = conf.get("LISTEN_DSN")
    if dsn:
        given = conninfo.conninfo_to_dict(dsn)
        extra: dict[str, Any] = {k: v for k, v in sessions.link_options().items() if k not in given}
        conn = psycopg.connect(dsn, autocommit=autocommit, **extra)
    else:
        params = connections[conf.get("DATABASE")].get_connection_params()
        for django_only in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(django_only, None)
        conn = psycopg.connect(**sessions.with_link_options(params), autocommit=autocommit)
    try:
        sessions.guard(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class Listener:
    """LISTEN on ``channels``; :meth:`wait` returns payloads, reconnecting on failure.

    After a reconnect, :meth:`wait` returns ``[""]`` once: notifications may have been
    missed while the connection was down, so the caller should look again.
    """

    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = list(channels)
        self._conn: psycopg.Connection[Any] | None = None
        self._failures = 0

    def wait(self, timeout: float) -> list[str]:
        """Payloads received within ``timeout`` seconds (empty list if none)."""
        return [payload for _, payload in self.wait_channels(timeout)]

    def wait_channels(self, timeout: float) -> list[tuple[str, str]]:
        """``(channel, payload)`` pairs received within ``timeout`` seconds.

        After (re)connecting it returns ``("", "")`` at once: whatever happened before is
        unknown, so the caller should look again.
        """
        try:
            if self._ensure():
                self._failures = 0
                return [("", "")]
            received: list[tuple[str, str]] = []
            assert self._conn is not None
            for notify in self._conn.notifies(timeout=timeout, stop_after=1):
                received.append((notify.channel, notify.payload))
            # Drain what arrived together with the first one, without waiting.
            for notify in self._conn.notifies(timeout=0):
                received.append((notify.channel, notify.payload))
            self._failures = 0
            return received
        except psycopg.Error as exc:
            self._drop(exc)
            time.sleep(self.backoff())
            return []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _ensure(self) -> bool:
        if self._conn is not None and not self._conn.closed:
            return False
        self._conn = connect()
        for channel in self.channels:
            self._conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))
        if self._failures:
            logger.warning("Listening for notifications again on %s.", ", ".join(self.channels))
        return True

    def _drop(self, exc: Exception) -> None:
        self._failures += 1
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if self._conn is None:
            # Reconnecting failed: say so, not that a connection was lost again.
            logger.warning(
                "Cannot LISTEN (%s); retrying in %gs, polling meanwhile.",
                reason,
                self.backoff(),
            )
            return
        logger.warning(
            "Lost the notification connection (%s); polling every %ss until it is back.",
            reason,
            conf.get("POLL_INTERVAL_SECONDS"),
        )
        try:
            self._conn.close()
        finally:
            self._conn = None

    def backoff(self) -> float:
        """Seconds to wait before the next connection attempt."""
        return min(10.0, 0.25 * 2.0**self._failures)
