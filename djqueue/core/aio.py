"""Running ``async def`` tasks: one event loop per process, in a thread of its own.

A pool slot that takes an async job hands its coroutine to the loop and waits for it;
the coroutines of all slots run concurrently on that one loop. So a worker with many
cheap slots (``--pool threads -c 200``, or gevent) runs as many async jobs at once in
one process, next to its sync jobs. The coroutine runs with the caller's context, so
``self.request`` works inside it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import Coroutine
from typing import Any

# How often a waiting slot wakes up: an exception raised into its thread (time limits,
# revocation) lands within this long, and then cancels the coroutine.
_WAKE_EVERY = 0.1

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` on this process's loop; return its value or raise its error."""
    loop = _running_loop()
    context = contextvars.copy_context()
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    started: list[asyncio.Task[Any]] = []

    def start() -> None:
        task = loop.create_task(coroutine, context=context)
        started.append(task)
        task.add_done_callback(lambda done: _settle(done, future))

    loop.call_soon_threadsafe(start)
    try:
        while True:
            try:
                return future.result(timeout=_WAKE_EVERY)
            except concurrent.futures.TimeoutError:
                continue
    except BaseException:
        # Stopped from outside (a time limit, a revocation): stop the coroutine too.
        if started and not future.done():
            loop.call_soon_threadsafe(started[0].cancel)
        raise


def _settle(task: asyncio.Task[Any], future: concurrent.futures.Future[Any]) -> None:
    if task.cancelled():
        future.set_exception(asyncio.CancelledError())
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


def _running_loop() -> asyncio.AbstractEventLoop:
    """This process's loop, started on first use (and anew in a forked child)."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            thread = threading.Thread(target=_loop.run_forever, name="djqueue-asyncio", daemon=True)
            thread.start()
        return _loop
