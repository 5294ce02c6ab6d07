"""Which notifications of new jobs a worker answers with a claim at once, which a little
later, and which not at all: the thundering herd of idle workers, kept small.

Every worker of a queue hears every notification of new jobs on it. If every idle
worker claimed at once, one job sent to N idle workers would cost N claims, N - 1 of
them empty. So a worker that shares its queues with two or more live peers (counted at
each heartbeat) plays one of two parts, learnt from its own claims:

- a *leader* -- its last claim answering a notification took a job, or it has made
  none yet -- claims at once if it has an idle slot;
- a *follower* -- its last such claim took nothing, a peer was quicker -- waits its
  stagger (``WAKE_STAGGER_MS`` at first) to twice that, then claims, unless a peer said
  meanwhile that its claim emptied the queue. A leader without an idle slot waits
  longer still, so that an idle follower gets the job first.

A claim answering a notification that comes back short (some jobs, fewer than it asked
for) says so on the ``djqueue_drained`` channel, after its jobs went to the pool. With
an idle leader, one job costs one claim and one notification whatever the number of
workers. A follower whose late claim still found nothing (the news came after its
stagger: a loaded machine, a slow network) doubles its stagger, up to 16 times the
setting; one that takes a job halves it again. A busy or lost leader costs a stagger,
after which a follower takes the job and leads.

Nothing is lost: the announcement is a hint about a claim already made, every worker
still polls every ``POLL_INTERVAL_SECONDS``, and a job sent while the leader's claim ran
is announced after that claim began, so the leader hears it and claims again.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from djqueue.core import conf
from djqueue.runtime.outage import DB_ERRORS, describe

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")

# Peers on a worker's queues from which on staggering pays: with one peer, an empty
# claim costs what an announcement would.
MIN_PEERS = 2
# A follower's stagger grows up to this many times WAKE_STAGGER_MS.
MAX_GROWTH = 16


class Wakeups:
    """One worker's part in answering notifications of new jobs."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.base = conf.number("WAKE_STAGGER_MS") / 1000
        # This worker's stagger now (it adapts; main thread writes, listener reads).
        self.stagger = self.base
        # Live workers besides this one on its queues (set at each heartbeat).
        self.peers = 0
        self.leader = True
        # Main thread: whether the next claim answers a notification, and the queues a
        # short claim emptied (to announce once its jobs are in the pool).
        self.answering = False
        # Whether that claim is a follower's, made after its stagger.
        self.late = False
        self._emptied: Sequence[str] = ()
        # A follower's claims to come, by queue: when (on the worker's clock).
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._random = random.Random()

    def staggering(self) -> bool:
        """Whether this worker staggers (enough peers, and a stagger set)."""
        return self.base > 0 and self.peers >= MIN_PEERS

    def heard(self, queue: str) -> bool:
        """New jobs on ``queue`` (listener thread): True to claim at once, False when a
        claim is due later instead (see :meth:`take_due`)."""
        if not self.staggering():
            return True
        worker = self.worker
        idle_slot = len(worker.held) < worker.pool.concurrency
        if self.leader and idle_slot:
            return True
        wait = self.stagger if idle_slot else 2 * self.stagger
        at = worker.clock.now() + self._random.uniform(wait, wait + self.stagger)
        with self._lock:
            self._due.setdefault(queue, at)
        return False

    def drained(self, queue: str) -> None:
        """A peer's claim emptied ``queue`` (listener thread): no claim is due for it."""
        with self._lock:
            self._due.pop(queue, None)

    def due_in(self) -> float | None:
        """Seconds until a follower's claim is due; None when none is waiting."""
        with self._lock:
            if not self._due:
                return None
            first = min(self._due.values())
        return max(0.0, first - self.worker.clock.now())

    def take_due(self) -> bool:
        """Whether a follower's claim is due now (main thread; it is then taken)."""
        if not self._due:
            return False
        now = self.worker.clock.now()
        with self._lock:
            due = [queue for queue, at in self._due.items() if at <= now]
            for queue in due:
                del self._due[queue]
        self.late = self.late or bool(due)
        return bool(due)

    def answered(self, queues: Sequence[str], asked: int, got: int) -> None:
        """A claim answering a notification took ``got`` of the ``asked`` jobs."""
        self.answering = False
        self.leader = got > 0
        if self.late:
            # Found nothing: the news of the claim that did came after the stagger.
            grown = self.stagger * 2 if not got else self.stagger / 2
            self.stagger = min(self.base * MAX_GROWTH, max(self.base, grown))
            self.late = False
        if 0 < got < asked and self.staggering():
            self._emptied = queues

    def announce(self) -> None:
        """Say which queues the last claim emptied, if it did (main thread, after the
        claimed jobs went to the pool). A failure costs peers one claim each, no more."""
        queues, self._emptied = self._emptied, ()
        if not queues:
            return
        try:
            self.worker.store.announce_drained(queues)
        except DB_ERRORS as exc:
            logger.info("Could not announce emptied queues (%s).", describe(exc))
            self.worker.store.reset()
