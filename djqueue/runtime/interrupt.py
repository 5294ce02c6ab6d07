"""Interrupting a running task, and only the task: the window in which it may happen.

Soft and hard time limits and ``revoke(terminate=True)`` stop a task by raising an
exception inside it. An exception that lands a moment too late, after the task
returned, would hit the worker's own bookkeeping instead (writing the outcome, a pool's
lock, the loop that takes the next job) and crash or wedge it. So every interrupt goes
through a window (:class:`ThreadWindow` here, a greenlet's in the gevent pool) that is
open exactly while the task's own code runs:

- ``call(fn)`` opens the window, runs ``fn``, and closes it in a guarded region: an
  interrupt that lands after ``fn`` returned but before the window is shut is
  swallowed there (it came too late; the task's own result stands), and once it is
  shut nothing more can be sent.
- ``deliver(error)`` sends ``error`` only while the window is open, under the same lock
  that closing takes, so "is it open?" and "send" cannot be split by the task leaving.

Threads (and the solo pool) get the exception from ``PyThreadState_SetAsyncExc``, which
Python checks between bytecodes: it interrupts Python code but not a blocking call in C
(``time.sleep``, a socket read) until that call returns. A prefork child gets it from a
signal handler that raises only while its window is open
(:meth:`ThreadWindow.raise_if_open`).
"""

from __future__ import annotations

import _thread
import ctypes
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


def raise_in(thread_ident: int, error: type[BaseException]) -> bool:
    """Schedule ``error`` in thread ``thread_ident``; False if no such thread."""
    changed = _set_async_exc(ctypes.c_ulong(thread_ident), ctypes.py_object(error))
    if changed > 1:  # should not happen: undo, as the C API asks
        _set_async_exc(ctypes.c_ulong(thread_ident), ctypes.py_object())
        return False
    return bool(changed == 1)


def clear(thread_ident: int) -> None:
    """Drop an exception scheduled in ``thread_ident`` and not raised yet."""
    _set_async_exc(ctypes.c_ulong(thread_ident), ctypes.py_object())


class Window(Protocol):
    """What a pool hands the runner of a job: the way into and out of the task's code."""

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (the task's code) with the window open."""

    def deliver(self, error: type[BaseException]) -> bool:
        """Raise ``error`` inside the task; False when the window is shut."""


def os_thread_ident() -> int:
    """This OS thread's id, which ``PyThreadState_SetAsyncExc`` needs; under gevent's
    patching ``threading.get_ident()`` names the greenlet instead."""
    monkey: Any = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return int(monkey.get_original("_thread", "get_ident")())
    return _thread.get_ident()


class ThreadWindow:
    """When a task running in this thread may be interrupted: while its code runs."""

    def __init__(self, lock: Any = None) -> None:
        # ``lock``: an OS lock where gevent would otherwise make a lock that switches.
        self._lock = lock if lock is not None else threading.Lock()
        self._thread: int | None = None  # the thread inside the task; None: shut
        self._sent: tuple[type[BaseException], ...] = ()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with the window open; interrupts reach nothing after it returns."""
        try:
            self._open()
            return fn()
        finally:
            self._shut()

    def is_open(self) -> bool:
        """Whether a task runs inside the window now."""
        return self._thread is not None

    def deliver(self, error: type[BaseException]) -> bool:
        """Raise ``error`` inside the task (thread-safe); False when the window is shut."""
        with self._lock:
            if self._thread is None:
                return False
            self._sent += (error,)
            return raise_in(self._thread, error)

    def raise_if_open(self, error: BaseException) -> None:
        """For a signal handler in the task's thread: raise ``error`` only inside the task."""
        if self._thread is not None:
            self._sent += (type(error),)
            raise error

    def _open(self) -> None:
        with self._lock:
            self._thread = os_thread_ident()
            self._sent = ()

    def _shut(self) -> None:
        # An interrupt sent before the window is marked shut may land on any bytecode
        # here, even inside the lock's block (whose exit still releases the lock). Each
        # such landing is swallowed and the shutting starts over; once the window is
        # marked shut under the lock and any pending exception is dropped, no other can
        # come, because deliver() checks the mark under the same lock.
        while True:
            try:
                with self._lock:
                    thread, self._thread = self._thread, None
                    # Nothing sent, nothing pending: the common case costs no C call.
                    if thread is not None and self._sent:
                        clear(thread)
                return
            except BaseException as exc:
                if not isinstance(exc, self._sent):
                    raise
