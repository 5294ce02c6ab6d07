"""The periodic task scheduler behind ``manage.py runbeat`` (and ``runworker --beat``).

Several schedulers may run at once: the one holding the leader lock fires slots, the
others wait to take over (see :class:`djqueue.beat.leadership.Link`). The leader computes each
task's next slot from its previous slot, fires it when the database's clock reaches it,
and enqueues its job in the transaction that records the run, under a unique (task, slot)
constraint. Edits to periodic tasks arrive as notifications, with a polling fallback
(every ``BEAT_MAX_INTERVAL_SECONDS``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import psycopg
from django.db import Error as DjangoDatabaseError
from django.db import connections

from djqueue.beat import beat_schedule, entries, leadership
from djqueue.beat.entries import Entry, EntryError
from djqueue.core import conf, schedules, signals, text
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import periodic, schema, sessions

logger = logging.getLogger("djqueue.beat")

# Slots of one task fired in one tick at most (a long catch-up under "all" goes on at
# the next tick, so that other tasks and notifications are not kept waiting).
BATCH = 100
# How late a slot may be and still run under the "skip" policy.
SKIP_GRACE_SECONDS = 60.0
# Longest single wait, so that a stop request is noticed quickly.
WAIT_CHUNK_SECONDS = 1.0

_DB_ERRORS = (DjangoDatabaseError, psycopg.Error)


class Store(Protocol):
    """Where the scheduler reads periodic tasks and records what it fired."""

    def load(self) -> tuple[list[Entry], dict[int, tuple[str, str]]]: ...

    def fire(self, item: Entry, decision: schedules.Decision, finish: bool) -> bool: ...


class DatabaseStore:
    """The real store: the periodic task rows of the queue database."""

    def load(self) -> tuple[list[Entry], dict[int, tuple[str, str]]]:
        return entries.load()

    def fire(self, item: Entry, decision: schedules.Decision, finish: bool) -> bool:
        return entries.fire(item, decision, finish)


class Scheduler:
    """Decides which slots are due at a given moment and fires them.

    It is given the time and never reads a clock, so tests drive it with any clock.
    """

    def __init__(self, store: Store, batch: int = BATCH, grace: float = SKIP_GRACE_SECONDS):
        self.store = store
        self.batch = batch
        self.grace = grace
        self.entries: dict[int, Entry] = {}
        # Entries that could not be sent, by id, with the version that failed: skipped
        # until their row changes, and reported once.
        self.broken: dict[int, str] = {}

    def load(self) -> None:
        """Read the periodic tasks again (at start, on a change, and now and then)."""
        entries, invalid = self.store.load()
        for entry_id, (version, error) in invalid.items():
            self._report(entry_id, version, f"periodic task {error}; it will not run")
        self.entries = {
            item.id: item for item in entries if self.broken.get(item.id) != item.version
        }

    def tick(self, now: datetime.datetime) -> datetime.datetime | None:
        """Fire what is due at ``now``; return when the next slot falls (None: none)."""
        for item in list(self.entries.values()):
            self._advance(item, now)
        return self.next_due()

    def next_due(self) -> datetime.datetime | None:
        """The earliest next slot among the entries."""
        upcoming = [slot for item in self.entries.values() if (slot := item.next_slot())]
        return min(upcoming, default=None)

    def _advance(self, item: Entry, now: datetime.datetime) -> None:
        for _ in range(self.batch):
            decision = schedules.due(item.schedule, item.after, now, item.catch_up, self.grace)
            if decision is None:
                return
            finish = (item.once and decision.run) or (
                item.schedule.next_after(decision.slot) is None
            )
            try:
                fired = self.store.fire(item, decision, finish)
            except EntryError as exc:
                self.entries.pop(item.id, None)
                self._report(item.id, item.version, f"{exc}; nothing is enqueued for it")
                return
            self._log(item, decision, fired)
            if finish:
                self.entries.pop(item.id, None)
                return
            item = dataclasses.replace(item, after=decision.slot)
            self.entries[item.id] = item

    def _log(self, item: Entry, decision: schedules.Decision, fired: bool) -> None:
        # Names come from rows: %r and printable() escape their control characters.
        slot = decision.slot.isoformat()
        if fired:
            task = text.printable(item.task)
            logger.info("Sent %s (periodic task %r) for %s.", task, item.name, slot)
        elif decision.run:
            logger.info("Periodic task %r for %s was already sent.", item.name, slot)
        else:
            logger.info("Periodic task %r: skipped the missed run of %s.", item.name, slot)

    def _report(self, entry_id: int, version: str, message: str) -> None:
        if self.broken.get(entry_id) != version:
            self.broken[entry_id] = version
            logger.error("%s (fix it in the admin or in BEAT_SCHEDULE).", text.printable(message))


class Beat:
    """The scheduler process's loop: sync, lead or wait to, tick, sleep until due."""

    def __init__(
        self,
        name: str,
        max_interval: float | None = None,
        stop: threading.Event | None = None,
        store: Store | None = None,
        clock: Callable[[], datetime.datetime] = periodic.db_now,
    ) -> None:
        self.name = name
        self.max_interval = (
            conf.number("BEAT_MAX_INTERVAL_SECONDS") if max_interval is None else max_interval
        )
        self.follower_retry = conf.number("BEAT_FOLLOWER_RETRY_SECONDS")
        self.stop = stop or threading.Event()
        self.scheduler = Scheduler(store or DatabaseStore())
        self.clock = clock
        self.link = leadership.Link()
        self._reload_at = 0.0
        self._prune_at = 0.0
        self._failures = 0

    def run(self) -> None:
        """Serve until :attr:`stop` is set (in the calling thread, which becomes one of
        djqueue's own: its statements get ``STATEMENT_TIMEOUT_SECONDS``)."""
        sessions.own_thread()
        logger.info("Beat %s starting.", self.name)
        signals.emit(signals.beat_init, self)
        try:
            self._sync()
            logger.info("Beat %s ready: waiting to lead.", self.name)
            while not self.stop.is_set():
                self.step()
        finally:
            self.link.close()
            _close_connection()
        logger.info("Beat %s stopped.", self.name)

    def step(self) -> None:
        """One turn of the loop: follow or lead, and wait; database trouble is survived."""
        try:
            if self.link.leading:
                self._lead()
            else:
                self._follow()
        except _DB_ERRORS as exc:
            self._lost(exc)
            return
        if self._failures:
            logger.warning("Beat %s: database reachable again.", self.name)
            self._failures = 0

    def _sync(self) -> None:
        while not self.stop.is_set():
            try:
                report = beat_schedule.sync()
            except _DB_ERRORS as exc:
                self._lost(exc)
                continue
            logger.info(
                "BEAT_SCHEDULE synced: %d created, %d updated, %d disabled, %d invalid.",
                len(report.created),
                len(report.updated),
                len(report.disabled),
                len(report.errors),
            )
            self._failures = 0
            return

    def _follow(self) -> None:
        if self.link.try_lead():
            logger.info("Beat %s is now the leader.", self.name)
            # Start from the database's view: the previous leader moved the slots on.
            self._reload_at = 0.0
            return
        self.stop.wait(self.follower_retry)

    def _lead(self) -> None:
        # Still the leader? A process that was frozen may have lost the lock meanwhile:
        # it finds out before it fires anything.
        self.link.check()
        if time.monotonic() >= self._reload_at:
            self.scheduler.load()
            self._reload_at = time.monotonic() + self.max_interval
        now = self.clock()
        upcoming = self.scheduler.tick(now)
        self._prune()
        delay = self._reload_at - time.monotonic()
        if upcoming is not None:
            delay = min(delay, (upcoming - now).total_seconds())
        if self._wait(delay):
            self._reload_at = 0.0

    def _wait(self, seconds: float) -> bool:
        """Wait for a change notification for up to ``seconds``; True if one came."""
        return self.link.wait(max(0.0, min(seconds, WAIT_CHUNK_SECONDS)))

    def _prune(self) -> None:
        if time.monotonic() < self._prune_at:
            return
        self._prune_at = time.monotonic() + conf.number("PRUNE_INTERVAL_SECONDS")
        count = periodic.prune_runs(conf.number("BEAT_RUN_RETENTION_SECONDS"))
        if count:
            logger.info("Pruned %d old periodic run record(s).", count)

    def _lost(self, exc: BaseException) -> None:
        """The database failed: give up leadership, back off, and try again.

        Missing tables are no outage: waiting would not bring them, so that ends the
        scheduler with ``MigrationsMissing``, which says to run ``migrate``.
        """
        missing = schema.translate(exc)
        if missing is not None:
            raise missing from None
        self._failures += 1
        delay = min(10.0, 0.25 * 2**self._failures)
        was_leading = self.link.leading
        self.link.close()
        _close_connection()
        logger.error(
            "Beat %s: database unavailable (%s)%s; retrying in %.1fs.",
            self.name,
            " ".join(str(exc).split()) or type(exc).__name__,
            ", no longer leading" if was_leading else "",
            delay,
        )
        self.stop.wait(delay)


def start_thread(name: str, max_interval: float | None = None) -> threading.Thread:
    """Run a scheduler in a daemon thread of this process (``runworker --beat``)."""
    beat = Beat(name, max_interval)
    thread = threading.Thread(target=_run_logged, args=(beat,), name="djqueue-beat", daemon=True)
    thread.start()
    return thread


def _run_logged(beat: Beat) -> None:
    try:
        beat.run()
    except MigrationsMissing as exc:
        logger.error("Beat %s stopped: %s", beat.name, exc)


def _close_connection() -> None:
    with contextlib.suppress(DjangoDatabaseError):
        connections[conf.database()].close()
