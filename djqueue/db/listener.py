"""Dedicated connections that LISTEN for notifications, reconnecting when they drop;
what djqueue's notifications say, validated; and a loop that nothing can end.

Any role that can connect to the database can NOTIFY on any channel, so a payload is
input from outside. :meth:`Listener.notices` parses each one into a typed notice and
drops (and logs, escaped and rate-limited) one that does not parse. A notice is a
hint that makes a worker or a waiter look at the database sooner; even a revoke
request is acted on only when the job's row asks for it.

Why it is longer than 400 lines: each channel's name, the shape of its payload and the
reader that checks it sit side by side, next to the connection that hears them, so that
a new channel is added in one place; tests replace its rejection counter and restart
delay by their names here.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import psycopg
from psycopg import conninfo
from psycopg import sql as pgsql

from djqueue.core import conf, text
from djqueue.db import sessions
from djqueue.db.models import Job

logger = logging.getLogger("djqueue.listener")

# Payload: a queue that was given jobs (a worker of that queue should claim).
JOBS_CHANNEL = "djqueue"
# Payload: the ids of jobs that changed state, space-separated; empty when there were
# too many to name (every waiter should read again).
DONE_CHANNEL = "djqueue_done"
# Payload: the ids of jobs a worker recorded as started, space-separated; empty when
# there were too many to name. Only ``manage.py djqueue events`` listens to it.
STARTED_CHANNEL = "djqueue_started"
# Payload: the id of a running job that revoke(terminate=True) asks to stop.
REVOKE_CHANNEL = "djqueue_revoke"
# Payload: a queue that was paused or resumed.
PAUSE_CHANNEL = "djqueue_pause"
# Payload: the id of a control command (djqueue.db.control) workers should read.
CONTROL_CHANNEL = "djqueue_control"
# Payload: a queue a worker's claim just emptied (peers about to claim need not).
DRAINED_CHANNEL = "djqueue_drained"

# A malformed notification is logged at most once per this many seconds.
REJECT_LOG_SECONDS = 60.0
# Longest part of a malformed payload quoted in the log.
REJECT_LOG_CHARS = 200
# A loop run by run_forever that lasted this long before failing failed afresh: its
# restart delay starts again from the shortest.
HEALTHY_RUN_SECONDS = 60.0


def connect(autocommit: bool = True) -> psycopg.Connection[Any]:
    """Open a plain psycopg connection to the queue database (``LISTEN_DSN`` if set).

    It gets the guards of :mod:`djqueue.db.sessions`: the keepalives and user timeout
    that the DSN or the database's ``OPTIONS`` do not set, and the session settings.
    """
    dsn = conf.get("LISTEN_DSN")
    if dsn:
        given = conninfo.conninfo_to_dict(dsn)
        extra: dict[str, Any] = {k: v for k, v in sessions.link_options().items() if k not in given}
        conn = psycopg.connect(dsn, autocommit=autocommit, **extra)
    else:
        conn = sessions.connect_database(autocommit)
    try:
        sessions.guard(conn)
    except BaseException:
        conn.close()
        raise
    return conn


# Notices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconnected:
    """The connection was (re)made: notifications may have been missed, look again."""


@dataclass(frozen=True)
class NewJobs:
    """Jobs are waiting on ``queue`` (sent, retried, or freed by a limit)."""

    queue: str


@dataclass(frozen=True)
class Drained:
    """A worker's claim emptied ``queue``: claims answering earlier notices may wait."""

    queue: str


@dataclass(frozen=True)
class PauseChanged:
    """``queue`` was paused or resumed; which of the two is read from the database."""

    queue: str


@dataclass(frozen=True)
class RevokeRequested:
    """``revoke(terminate=True)`` asks the worker running ``job_id`` to stop it."""

    job_id: uuid.UUID


@dataclass(frozen=True)
class ControlSent:
    """A control command was written; workers read the control table again."""

    control_id: uuid.UUID


@dataclass(frozen=True)
class Finished:
    """Jobs changed state (finished, retrying, revoked); read their rows again.

    ``job_ids`` is None when there were too many to name: every waiter reads again.
    """

    job_ids: frozenset[uuid.UUID] | None


@dataclass(frozen=True)
class Started:
    """Jobs a worker recorded as started; None when there were too many to name."""

    job_ids: frozenset[uuid.UUID] | None


Notice: TypeAlias = (
    Reconnected
    | NewJobs
    | Drained
    | PauseChanged
    | RevokeRequested
    | ControlSent
    | Finished
    | Started
)
RECONNECTED = Reconnected()


def parse(channel: str, payload: str) -> Notice | None:
    """What ``payload`` on ``channel`` says, or None (logged) when it is malformed."""
    reader = _READERS.get(channel)
    notice = None if reader is None else reader(payload)
    if notice is None:
        rejected.report(channel, payload)
    return notice


def _queue(payload: str) -> str | None:
    limit = Job._meta.get_field("queue").max_length or 0
    return payload if 0 < len(payload) <= limit else None


def _job_id(payload: str) -> uuid.UUID | None:
    # The canonical text form only, as PostgreSQL writes a uuid.
    if len(payload) != 36:
        return None
    try:
        return uuid.UUID(payload)
    except ValueError:
        return None


def _new_jobs(payload: str) -> Notice | None:
    queue = _queue(payload)
    return None if queue is None else NewJobs(queue)


def _drained(payload: str) -> Notice | None:
    queue = _queue(payload)
    return None if queue is None else Drained(queue)


def _pause_changed(payload: str) -> Notice | None:
    queue = _queue(payload)
    return None if queue is None else PauseChanged(queue)


def _revoke_requested(payload: str) -> Notice | None:
    job_id = _job_id(payload)
    return None if job_id is None else RevokeRequested(job_id)


def _control_sent(payload: str) -> Notice | None:
    control_id = _job_id(payload)
    return None if control_id is None else ControlSent(control_id)


def _job_ids(payload: str) -> frozenset[uuid.UUID] | None:
    """Space-separated job ids; None if one of them is not an id."""
    job_ids = [_job_id(part) for part in payload.split(" ")]
    if any(job_id is None for job_id in job_ids):
        return None
    return frozenset(job_id for job_id in job_ids if job_id is not None)


def _ids_read_as(
    kind: Callable[[frozenset[uuid.UUID] | None], Notice],
) -> Callable[[str], Notice | None]:
    """A reader of job ids (``kind(None)`` for an empty payload: too many to name)."""

    def read(payload: str) -> Notice | None:
        job_ids = frozenset() if payload == "" else _job_ids(payload)
        return None if job_ids is None else kind(job_ids or None)

    return read


_READERS: dict[str, Callable[[str], Notice | None]] = {
    JOBS_CHANNEL: _new_jobs,
    DRAINED_CHANNEL: _drained,
    PAUSE_CHANNEL: _pause_changed,
    REVOKE_CHANNEL: _revoke_requested,
    DONE_CHANNEL: _ids_read_as(Finished),
    STARTED_CHANNEL: _ids_read_as(Started),
    CONTROL_CHANNEL: _control_sent,
}


class Rejections:
    """Counts malformed notifications and logs them, at most one line per ``every``
    seconds, so that a flood of them cannot fill the log."""

    def __init__(self, every: float = REJECT_LOG_SECONDS) -> None:
        self.every = every
        self.count = 0
        self._lock = threading.Lock()
        self._quiet_until = 0.0
        self._unlogged = 0

    def report(self, channel: str, payload: str) -> None:
        """Count one; log it unless a line was logged less than ``every`` seconds ago."""
        with self._lock:
            self.count += 1
            now = time.monotonic()
            if now < self._quiet_until:
                self._unlogged += 1
                return
            unlogged, self._unlogged = self._unlogged, 0
            self._quiet_until = now + self.every
        logger.warning(
            "Ignored a malformed notification on channel %s: '%s'%s.",
            text.printable(text.shortened(channel, REJECT_LOG_CHARS)),
            text.printable(text.shortened(payload, REJECT_LOG_CHARS)),
            f" ({unlogged} more since the last report, not logged)" if unlogged else "",
        )


rejected = Rejections()


# Listening -------------------------------------------------------------------------


class Listener:
    """LISTEN on ``channels``; :meth:`notices` returns what was heard, reconnecting on
    failure (with a growing delay, logged).

    After a reconnect, :meth:`notices` returns ``[RECONNECTED]`` once: notifications
    may have been missed while the connection was down, so the caller should look again.
    """

    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = list(channels)
        self._conn: psycopg.Connection[Any] | None = None
        self._failures = 0

    def notices(self, timeout: float) -> list[Notice]:
        """Validated notices received within ``timeout`` seconds (empty list if none).

        After (re)connecting it returns ``[RECONNECTED]`` at once: whatever happened
        before is unknown, so the caller should look again. Malformed notifications are
        logged and left out.
        """
        found: list[Notice] = []
        for channel, payload in self.wait_channels(timeout):
            notice = RECONNECTED if channel == "" else parse(channel, payload)
            if notice is not None:
                found.append(notice)
        return found

    def wait(self, timeout: float) -> list[str]:
        """Raw payloads received within ``timeout`` seconds (empty list if none).

        Unvalidated: prefer :meth:`notices`.
        """
        return [payload for _, payload in self.wait_channels(timeout)]

    def wait_channels(self, timeout: float) -> list[tuple[str, str]]:
        """Raw ``(channel, payload)`` pairs received within ``timeout`` seconds.

        Unvalidated: prefer :meth:`notices`.

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
        except UnicodeDecodeError as exc:
            # A payload in bytes the connection's encoding cannot decode (a SQL_ASCII
            # database). The rest of its batch is lost with it: ask for a new look.
            rejected.report("|".join(self.channels), repr(exc.object[exc.start : exc.end + 20]))
            return [("", "")]

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
            conf.number("POLL_INTERVAL_SECONDS"),
        )
        try:
            self._conn.close()
        finally:
            self._conn = None

    def backoff(self) -> float:
        """Seconds to wait before the next connection attempt."""
        return min(10.0, 0.25 * 2.0**self._failures)


# A loop nothing ends ---------------------------------------------------------------


def run_forever(target: Callable[[], object], name: str, stop: threading.Event) -> threading.Thread:
    """Run ``target`` in a daemon thread called ``name`` until ``stop`` is set.

    ``target`` is a loop that returns once ``stop`` is set. Whenever it raises, or
    returns while ``stop`` is not set, it is logged and started again after a pause
    that grows from 0.5 to 30 seconds (and starts over after a long healthy run). The
    thread is one of djqueue's own (:func:`djqueue.db.sessions.own_thread`).
    """
    thread = threading.Thread(target=_supervise, args=(target, name, stop), name=name, daemon=True)
    thread.start()
    return thread


def _supervise(target: Callable[[], object], name: str, stop: threading.Event) -> None:
    sessions.own_thread()
    failures = 0
    while not stop.is_set():
        started = time.monotonic()
        error = _run(target)
        if error is None and stop.is_set():
            return
        if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
            failures = 0
        failures += 1
        pause = restart_delay(failures)
        # With the traceback: a bug that ends the loop must be seen to be fixed.
        logger.error(
            "The %s loop %s; starting it again in %gs.",
            name,
            "failed" if error else "ended on its own",
            pause,
            exc_info=error,
        )
        stop.wait(pause)


def _run(target: Callable[[], object]) -> Exception | None:
    """Run ``target``; return what it raised, if anything."""
    try:
        target()
    except Exception as exc:
        return exc
    return None


def restart_delay(failures: int) -> float:
    """Seconds before a loop that failed ``failures`` times in a row starts again."""
    return min(30.0, 0.25 * 2.0**failures)
