"""Interrupts reach a task's own code and nothing else, even when they land as it ends.

Each test makes the interrupt arrive at the worst moment on purpose: after the task
returned, while the window is being shut. It must be swallowed there (the task's result
stands) and nothing may reach the code that runs afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from djqueue.core.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from djqueue.runtime import interrupt
from djqueue.runtime.interrupt import ThreadWindow

REPO_ROOT = Path(__file__).resolve().parents[2]


def _blocked_in_shut(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "_shut":
            return True
        frame = frame.f_back
    return False


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class _LockHolder:
    """Holds a window's lock from another thread, taken from inside the task, so that
    the task's thread then blocks inside ``_shut`` until :meth:`release`."""

    def __init__(self, window: ThreadWindow) -> None:
        self.window = window
        self._held = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold)

    def task(self) -> str:
        """The task: take the lock (in the holder), then return."""
        self._thread.start()
        self._held.wait()
        return "the task's result"

    def release(self) -> None:
        self._release.set()
        self._thread.join(5)

    def _hold(self) -> None:
        with self.window._lock:
            self._held.set()
            self._release.wait()


def _after_the_task(window: ThreadWindow, land: Callable[[threading.Thread], None]) -> Any:
    """Run a task through ``window`` in a thread; while the thread shuts the window, call
    ``land(thread)`` to send an interrupt, then let the shutting go on. Returns what
    the thread saw: the task's value (or error), and whether anything reached it after."""
    seen: dict[str, Any] = {}
    holder = _LockHolder(window)

    def run() -> None:
        try:
            seen["value"] = window.call(holder.task)
        except BaseException as exc:
            seen["value"] = exc
        try:
            total = 0
            for step in range(200_000):  # bytecodes on which a stray interrupt would land
                total += step
            seen["after"] = "nothing"
        except BaseException as exc:
            seen["after"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    _wait_for(lambda: _blocked_in_shut(runner), "the task to end and the window to shut")
    land(runner)
    holder.release()
    runner.join(5)
    return seen


def test_an_async_interrupt_landing_as_the_window_shuts_is_swallowed() -> None:
    window = ThreadWindow()

    def land(runner: threading.Thread) -> None:
        # What deliver() does, past its "is it open?" check (the lock is held here).
        window._sent += (TimeLimitExceeded,)
        assert interrupt.raise_in(runner.ident or 0, TimeLimitExceeded)

    seen = _after_the_task(window, land)
    assert seen == {"value": "the task's result", "after": "nothing"}
    assert window.deliver(TimeLimitExceeded) is False


def test_nothing_is_delivered_once_the_window_is_shut() -> None:
    window = ThreadWindow()
    assert window.call(lambda: 1) == 1
    assert window.deliver(SoftTimeLimitExceeded) is False
    assert not window.is_open()


def test_an_interrupt_inside_the_task_reaches_it() -> None:
    window = ThreadWindow()
    started = threading.Event()
    seen: dict[str, Any] = {}

    def task() -> str:
        started.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pass
        return "never interrupted"

    def run() -> None:
        try:
            seen["value"] = window.call(task)
        except SoftTimeLimitExceeded as exc:
            seen["value"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    started.wait()
    assert window.deliver(SoftTimeLimitExceeded) is True
    runner.join(5)
    assert isinstance(seen["value"], SoftTimeLimitExceeded)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_signal_landing_as_the_window_shuts_is_swallowed() -> None:
    # A prefork child gets its soft time limit as a signal whose handler raises only
    # while the window is open (djqueue.pools.child): the same race, through a handler.
    window = ThreadWindow()
    previous = signal.getsignal(signal.SIGUSR1)
    signal.signal(
        signal.SIGUSR1,
        lambda signum, frame: window.raise_if_open(SoftTimeLimitExceeded("soft limit")),
    )
    try:
        # Signal handlers run in the main thread: the task runs here; the lock holder
        # and the signal come from other threads.
        holder = _LockHolder(window)

        def land() -> None:
            _wait_for(_main_blocked_in_shut, "the window to shut")
            os.kill(os.getpid(), signal.SIGUSR1)
            # The handler runs as soon as the main thread can; it is blocked on the
            # lock, whose waiting a signal interrupts.
            holder.release()

        sender = threading.Thread(target=land)
        sender.start()
        value = window.call(holder.task)
        total = sum(range(200_000))
        sender.join(5)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert value == "the task's result"
    assert total == sum(range(200_000))


def _main_blocked_in_shut() -> bool:
    return _blocked_in_shut(threading.main_thread())


def test_the_threads_pool_thread_survives_interrupts_as_its_jobs_end() -> None:
    from djqueue.core import executor
    from djqueue.runtime.pools.threads import ThreadPool
    from tests.testapp import tasks
    from tests.unit.test_supervisor import claimed

    outcomes: list[Any] = []
    pool = ThreadPool(
        lambda job, window: outcomes.append(executor.execute(job, call=window.call)), 1
    )
    pool.start()
    jobs = [claimed(tasks.add, n, n) for n in range(300)]
    stop = threading.Event()

    def hammer() -> None:
        # Interrupt whatever runs, as fast as possible, as time limits racing job ends.
        while not stop.is_set():
            for running in pool.running():
                pool.interrupt(running.job_id, TimeLimitExceeded)

    interrupter = threading.Thread(target=hammer)
    interrupter.start()
    try:
        for job in jobs:
            pool.submit(job)
        _wait_for(lambda: len(outcomes) == len(jobs), "every job to end")
    finally:
        stop.set()
        interrupter.join(5)
    pool.stop()  # would hang if a thread had died holding the pool's lock
    states = {outcome.state for outcome in outcomes}
    assert states <= {"SUCCESS", "FAILURE"}
    failed = [o for o in outcomes if o.state == "FAILURE"]
    assert all(o.error_type == "djqueue.exceptions.TimeLimitExceeded" for o in failed)


GEVENT_SCRIPT = textwrap.dedent(
    """
    import json
    from djqueue.runtime import gevent_patch

    gevent_patch.patch()
    import gevent
    from djqueue.runtime.pools.gevent import GreenletWindow

    window = GreenletWindow()
    seen = {}

    def task():
        # Asks for an interrupt and returns before the hub can deliver it.
        seen["delivered"] = window.deliver(RuntimeError)
        return "the task's result"

    def runner():
        seen["value"] = window.call(task)
        try:
            gevent.sleep(0)  # bookkeeping that waits: the hub runs its callbacks here
            gevent.sleep(0.01)
            seen["after"] = "nothing"
        except BaseException as exc:
            seen["after"] = type(exc).__name__
        seen["again"] = window.deliver(RuntimeError)

    gevent.spawn(runner).join()
    print(json.dumps(seen))
    """
)


def test_a_greenlet_interrupt_that_comes_too_late_is_dropped() -> None:
    pytest.importorskip("gevent")
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "delivered": True,
        "value": "the task's result",
        "after": "nothing",
        "again": False,
    }


# Each pool, with an interrupt sent at the worst moment of every job ---------------------


class _LateWindow(ThreadWindow):
    """A window that, as its thread shuts it after the task returned, gets an
    interrupt: sent from another thread once the shutting thread waits on the lock,
    so it is pending the moment the real shutting goes on (no timing involved)."""

    def __init__(self, send: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self._send = send or self._async

    def _async(self, thread: int) -> None:
        self._sent += (TimeLimitExceeded,)
        interrupt.raise_in(thread, TimeLimitExceeded)

    def _shut(self) -> None:
        target = self._thread
        if target is None:
            super()._shut()
            return
        held = threading.Event()

        def hold_then_send() -> None:
            with self._lock:
                held.set()
                _wait_for(lambda: _waits_in_real_shut(target), "the window to shut")
                self._send(target)

        sender = threading.Thread(target=hold_then_send)
        sender.start()
        held.wait()
        try:
            super()._shut()
        finally:
            sender.join(5)


def _waits_in_real_shut(ident: int) -> bool:
    frame = sys._current_frames().get(ident)
    while frame is not None:
        if frame.f_code is ThreadWindow._shut.__code__:
            return True
        frame = frame.f_back
    return False


def _runner(outcomes: list[Any]) -> Callable[[Any, Any], None]:
    from djqueue.core import executor

    return lambda job, window: outcomes.append(executor.execute(job, call=window.call))


def test_threads_pool_a_late_interrupt_changes_no_outcome(monkeypatch: Any) -> None:
    from djqueue.runtime.pools import threads
    from tests.testapp import tasks
    from tests.unit.test_supervisor import claimed

    monkeypatch.setattr(threads, "ThreadWindow", _LateWindow)
    outcomes: list[Any] = []
    pool = threads.ThreadPool(_runner(outcomes), 2)
    pool.start()
    for n in range(10):
        pool.submit(claimed(tasks.add, n, n))
    _wait_for(lambda: len(outcomes) == 10, "every job to end")
    pool.stop()  # would hang if a thread had died holding the pool's lock
    assert [o.state for o in outcomes] == ["SUCCESS"] * 10


def test_solo_pool_a_late_interrupt_changes_no_outcome(monkeypatch: Any) -> None:
    from djqueue.runtime.pools import solo
    from tests.testapp import tasks
    from tests.unit.test_supervisor import claimed

    monkeypatch.setattr(solo, "ThreadWindow", _LateWindow)
    outcomes: list[Any] = []
    pool = solo.SoloPool(_runner(outcomes))
    for n in range(5):
        pool.submit(claimed(tasks.add, n, n))
    while pool.run_one():  # the worker loop's own thread: a stray interrupt lands here
        pass
    total = sum(range(200_000))
    assert [o.state for o in outcomes] == ["SUCCESS"] * 5
    assert total == sum(range(200_000))


def test_prefork_child_a_late_soft_limit_signal_changes_no_outcome(monkeypatch: Any) -> None:
    from djqueue.runtime.pools import child
    from tests.testapp import tasks
    from tests.unit.test_supervisor import claimed

    # What the child does: its soft limit comes as a signal, handled in its main thread.
    late = _LateWindow(send=lambda thread: os.kill(os.getpid(), child.SOFT_LIMIT_SIGNAL))
    monkeypatch.setattr(child, "_window", late)
    previous = signal.signal(child.SOFT_LIMIT_SIGNAL, child._soft_limit)
    try:
        outcome = child.run(claimed(tasks.add, 2, 3))
        total = sum(range(200_000))
    finally:
        signal.signal(child.SOFT_LIMIT_SIGNAL, previous)
    assert (outcome.state, outcome.result) == ("SUCCESS", "5")
    assert total == sum(range(200_000))


GEVENT_POOL_SCRIPT = textwrap.dedent(
    """
    import json, os, uuid

    from djqueue.runtime import gevent_patch

    gevent_patch.patch()
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from djqueue.runtime import pools
    from djqueue.core.exceptions import TimeLimitExceeded
    from djqueue.runtime.pools.gevent import GreenletWindow
    from djqueue.core.records import ClaimedJob

    shut = GreenletWindow.call

    def late(self, fn):
        def task():
            value = fn()
            self.deliver(TimeLimitExceeded)  # on its way as the task returns
            return value
        return shut(self, task)

    GreenletWindow.call = late

    class Host:
        reported = []

        def begin(self, job):
            return True

        def report(self, outcome):
            self.reported.append([outcome.state, outcome.result])

    host = Host()
    pool = pools.create("gevent", host, 4)
    for n in range(10):
        pool.submit(ClaimedJob(
            uuid.uuid4(), "tests.testapp.tasks.add", json.dumps([n, n]), "{}",
            1, 0, "q", 0, None, False,
        ))
    pool.stop()
    print(json.dumps(host.reported))
    """
)


def test_gevent_pool_a_late_interrupt_changes_no_outcome() -> None:
    pytest.importorskip("gevent")
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_POOL_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(reported) == sorted(["SUCCESS", str(n + n)] for n in range(10))
