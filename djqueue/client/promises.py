"""``then()`` on results: callbacks that run once jobs finish.

One daemon thread per process serves every pending callback: it waits on the result
listener (:mod:`djqueue.db.waiters`) for the jobs they wait for, reads which have
finished in one query, and calls the callbacks whose jobs all have. It ends, closing its
database connection, when no callback is left, and starts again with the next one.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from djqueue.core import conf, states
from djqueue.db import guard, waiters
from djqueue.db.models import Job

logger = logging.getLogger("djqueue.results")

THREAD_NAME = "djqueue-then"
# Longest wait between two reads: a lost notification delays a callback this long at most.
POLL_SECONDS = 1.0


class Promise(concurrent.futures.Future[Any]):
    """What ``then()`` gives: a future of the callback's value that chains as Celery's
    promise does, ``result.then(a).then(b)`` calling ``b`` with what ``a`` returned."""

    def then(
        self,
        callback: Callable[[Any], Any],
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Promise:
        """Call ``callback(value)`` once this one has its value (``on_error(exc)`` if it
        failed, when given); return a promise of what the callback returns."""
        made = Promise()

        def chained(done: concurrent.futures.Future[Any]) -> None:
            error = done.exception()
            if error is not None:
                made.set_exception(error)
                if on_error is not None:
                    _call_on_error(on_error, error)
                return
            _settle(made, callback, done.result(), on_error)

        self.add_done_callback(chained)
        return made


@dataclass(frozen=True, eq=False)
class _Pending:
    target: Any
    job_ids: frozenset[uuid.UUID]
    callback: Callable[[Any], Any]
    on_error: Callable[[BaseException], Any] | None
    future: Promise


class _Dispatcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._thread: threading.Thread | None = None
        self._waiter: waiters.Waiter | None = None

    def add(self, pending: _Pending) -> None:
        with self._lock:
            self._pending.append(pending)
            if self._waiter is not None:
                self._waiter.wake()  # read again now, with the new ids
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        from django.db import connections

        try:
            while self._round():
                pass
        finally:
            connections.close_all()

    def _round(self) -> bool:
        """Fire what is ready and wait a while; False once nothing is left to wait for."""
        with self._lock:
            batch = list(self._pending)
            if not batch:
                self._thread = None
                return False
        with waiters.waiting(set().union(*(p.job_ids for p in batch))) as waiter:
            with self._lock:
                self._waiter = waiter
            finished = _finished(batch)
            ready = [p for p in batch if p.job_ids <= finished]
            with self._lock:
                self._pending = [p for p in self._pending if p not in ready]
            for pending in ready:
                _fire(pending)
            if not ready:
                waiter.wait(POLL_SECONDS)
            with self._lock:
                self._waiter = None
        return True


def _finished(batch: Sequence[_Pending]) -> set[uuid.UUID]:
    wanted = list(set().union(*(p.job_ids for p in batch)))
    with guard.statements():
        jobs = Job.objects.using(conf.database()).filter(pk__in=wanted, state__in=states.READY)
        return set(jobs.values_list("id", flat=True))


def _fire(pending: _Pending) -> None:
    _settle(pending.future, pending.callback, pending.target, pending.on_error)


def _settle(
    future: Promise,
    callback: Callable[[Any], Any],
    value: Any,
    on_error: Callable[[BaseException], Any] | None,
) -> None:
    try:
        future.set_result(callback(value))
    except Exception as exc:
        future.set_exception(exc)
        if on_error is not None:
            _call_on_error(on_error, exc)
        else:
            logger.exception("a then() callback raised")


def _call_on_error(on_error: Callable[[BaseException], Any], exc: BaseException) -> None:
    try:
        on_error(exc)
    except Exception:
        logger.exception("the on_error of a then() callback raised")


_dispatcher = _Dispatcher()


def when_ready(
    target: Any,
    job_ids: Sequence[uuid.UUID],
    callback: Callable[[Any], Any],
    on_error: Callable[[BaseException], Any] | None,
) -> Promise:
    """Call ``callback(target)`` once the jobs ``job_ids`` have all finished."""
    future = Promise()
    pending = _Pending(target, frozenset(job_ids), callback, on_error, future)
    if not pending.job_ids:
        _fire(pending)
    else:
        _dispatcher.add(pending)
    return future


def call_now(
    target: Any, callback: Callable[[Any], Any], on_error: Callable[[BaseException], Any] | None
) -> Promise:
    """Call ``callback(target)`` here and now (a result that is final already)."""
    return when_ready(target, [], callback, on_error)


def _forget_after_fork() -> None:
    global _dispatcher
    # The parent's thread does not exist in the child, nor do its callbacks' waiters.
    _dispatcher = _Dispatcher()


os.register_at_fork(after_in_child=_forget_after_fork)
