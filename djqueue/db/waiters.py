"""One result listener per process: ``AsyncResult.get()`` and ``GroupResult.get()``
wait on it instead of each opening a LISTEN connection of their own.

A daemon thread, started by the first wait, holds one connection that LISTENs on
``djqueue_done`` and routes each notification to the waiters of the job ids it names.
A waiter is woken when one of its ids is named, when a notification names none (there
were too many to name), and after the connection was made or made again (notifications
may have been missed meanwhile). It reads its rows then, and otherwise only at its
polling interval. The thread closes its connection and ends soon after the last waiter
left, and starts again with the next wait.

Threads may wait at once, and so may greenlets: under gevent's patching the threads,
locks and events used here are gevent's. A forked child (prefork) starts with no
waiters and no listener, and never touches the connection its parent holds.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator

from djqueue.db import listener

# How long the listener stays connected after the last waiter left, so that a series
# of waits (get() in a loop) shares one connection. Short, because a test database is
# dropped right after the tests, and PostgreSQL waits only 5 seconds for its sessions.
LINGER_SECONDS = 1.0
# Longest single wait for notifications: how soon the thread notices it may retire.
WAIT_SECONDS = 1.0
THREAD_NAME = "djqueue-results"


class Waiter:
    """One wait: the job ids it is for, and the event that wakes it."""

    def __init__(self, job_ids: Iterable[uuid.UUID]) -> None:
        self.job_ids = frozenset(job_ids)
        self._event = threading.Event()

    def wake(self) -> None:
        """Make the current or the next :meth:`wait` return True."""
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait until woken or until ``timeout`` seconds passed; True if woken.

        Read the rows after it returns: the event is cleared here, before the read, so
        a wake for a change the read may miss makes the next wait return at once.
        """
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken


class Hub:
    """This process's waiters, by job id, and the listener thread that wakes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()
        self._by_id: dict[uuid.UUID, set[Waiter]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._left_at = 0.0

    def add(self, waiter: Waiter) -> None:
        """Route notifications for ``waiter``'s ids to it; start listening if needed."""
        with self._lock:
            self._waiters.add(waiter)
            for job_id in waiter.job_ids:
                self._by_id.setdefault(job_id, set()).add(waiter)
            if self._thread is None or not self._thread.is_alive():
                self._start()

    def remove(self, waiter: Waiter) -> None:
        """Stop routing notifications to ``waiter``."""
        with self._lock:
            self._waiters.discard(waiter)
            for job_id in waiter.job_ids:
                others = self._by_id.get(job_id, set())
                others.discard(waiter)
                if not others:
                    self._by_id.pop(job_id, None)
            if not self._waiters:
                self._left_at = time.monotonic()

    def close(self) -> None:
        """End the listener thread and close its connection now.

        Waiters registered meanwhile fall back to polling; the next one to register
        starts the thread again.
        """
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _start(self) -> None:
        # Under the lock. Each thread has its own stop event: one retiring never stops
        # the thread started after it.
        self._stop = stop = threading.Event()
        serve = functools.partial(self._serve, stop)
        self._thread = listener.run_forever(serve, THREAD_NAME, stop)

    def _serve(self, stop: threading.Event) -> None:
        heard = listener.Listener([listener.DONE_CHANNEL])
        try:
            while not stop.is_set():
                for notice in heard.notices(WAIT_SECONDS):
                    self._route(notice)
                self._retire_if_idle(stop)
        finally:
            heard.close()

    def _route(self, notice: listener.Notice) -> None:
        with self._lock:
            if isinstance(notice, listener.Finished) and notice.job_ids is not None:
                woken = set().union(*(self._by_id.get(i, ()) for i in notice.job_ids))
            elif isinstance(notice, listener.Finished | listener.Reconnected):
                # Too many to name, or some may have been missed: everyone reads.
                woken = set(self._waiters)
            else:
                woken = set()
        for waiter in woken:
            waiter.wake()

    def _retire_if_idle(self, stop: threading.Event) -> None:
        with self._lock:
            if self._waiters or time.monotonic() - self._left_at < LINGER_SECONDS:
                return
            if self._stop is stop:
                self._thread = None
            stop.set()


_hub = Hub()


@contextlib.contextmanager
def waiting(job_ids: Iterable[uuid.UUID]) -> Iterator[Waiter]:
    """A waiter for ``job_ids``, registered for the duration of the block.

    Read the rows inside the block, after registering: a job that finishes between a
    read made before the block and the registration is then not missed.
    """
    hub = _hub
    waiter = Waiter(job_ids)
    hub.add(waiter)
    try:
        yield waiter
    finally:
        hub.remove(waiter)


def close() -> None:
    """Close this process's result listener now (it starts again with the next wait)."""
    _hub.close()


def _forget_after_fork() -> None:
    global _hub
    # The parent's listener thread does not exist in the child. Its connection belongs
    # to the parent: it is left alone, since closing it would end the parent's session.
    _hub = Hub()


os.register_at_fork(after_in_child=_forget_after_fork)
