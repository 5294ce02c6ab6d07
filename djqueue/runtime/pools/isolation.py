"""One job in a process of its own, for the pools that run jobs inside the worker.

A job taken back from a lost worker may be what killed that worker (a segfault, an
``os.abort()``, memory exhausted); a job that killed its process before surely can. The
solo, threads and gevent pools run such a job (``ClaimedJob.isolate``) in a child forked
for it alone: if it dies again, only that child dies, the worker sees exactly which job
it was and how it ended, and the broker counts the kill towards quarantine. Prefork
children are processes of their own already.

The fork happens from a fresh thread (a greenlet under gevent), which holds none of the
worker's database connections, so the child cannot touch them; it opens its own if the
task needs one. While the child runs, the worker's thread waits inside the job's
interrupt window: a soft time limit is passed on to the child as a signal, a hard one or
``revoke(terminate=True)`` kills it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading

from djqueue.core import endings, executor, reporting, signals, text
from djqueue.core.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime import gevent_patch
from djqueue.runtime.interrupt import ThreadWindow, Window
from djqueue.runtime.pools import child as child_process
from djqueue.runtime.pools import lost, messages

logger = logging.getLogger("djqueue.worker")

# Pipe, fork and closing the parent's write end happen under one lock, so that no child
# forked for another job inherits this child's write end (which would hide its end of
# file until that other child exits).
_fork_lock = threading.Lock()
# Seconds between looks while waiting: lets interrupts land in the waiting thread.
_POLL = 0.2


def execute(job: ClaimedJob, window: Window) -> Outcome:
    """Run ``job`` through ``window``: here, or in a child of its own when it must be."""
    if not job.isolate:
        return executor.execute(job, call=window.call)
    logger.warning(
        "Task %s[%s] runs in a process of its own: it was taken back from a lost worker "
        "or killed its process before.",
        text.printable(job.task_name),
        job.id,
    )
    return run(job, window)


def run(job: ClaimedJob, window: Window) -> Outcome:
    """Run ``job`` in a forked child and return its outcome, or how the child died."""
    keeper = _Keeper(job)
    keeper.start()
    try:
        window.call(keeper.wait)
    except TimeLimitExceeded:
        ended = endings.failure(job, TimeLimitExceeded("the task ran past its time limit"))
        reporting.announce_stopped(job, ended, signal.SIGKILL)
        return ended
    except TaskRevokedError:
        ended = endings.revoked(job, "revoked while running (terminated)")
        reporting.announce_stopped(job, ended, signal.SIGKILL)
        return ended
    finally:
        keeper.stop()
    line = keeper.data.partition(b"\n")[0]
    if keeper.data.endswith(b"\n") and line:
        return messages.read_outcome(line)[0]
    how = lost.describe_exit(keeper.status)
    logger.error(
        "The process running %s[%s] on its own %s.", text.printable(job.task_name), job.id, how
    )
    return lost.lost_outcome(job, how)


class _Keeper:
    """The thread that forks the child and stays until it is gone.

    Linux sends the child its parent-death signal when the *thread* that forked it
    ends, so that thread must outlive the child. It is also a fresh thread, holding none
    of the worker's database connections for the child to inherit.
    """

    def __init__(self, job: ClaimedJob) -> None:
        self.job = job
        self.pid = 0
        self.data = b""
        self.status = 0
        self._forked = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="djqueue-isolation", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._forked.wait()
        if not self.pid:
            raise RuntimeError("could not fork a process for the job")

    def wait(self) -> None:
        """Wait for the child to end; pass a soft time limit on to it."""
        while True:
            try:
                if self._done.wait(_POLL):
                    return
            except SoftTimeLimitExceeded:
                # Passed on: the child raises it inside the task.
                _signal(self.pid, child_process.SOFT_LIMIT_SIGNAL)

    def stop(self) -> None:
        """Kill the child if it still runs; wait for it and for this thread."""
        if not self._done.is_set():
            _signal(self.pid, signal.SIGKILL)
        self._thread.join()

    def _keep(self) -> None:
        try:
            with _fork_lock:
                source, sink = os.pipe()
                pid = child_process.fork()
                if pid == 0:
                    _serve(self.job, source, sink, os.getppid())
                os.close(sink)
            self.pid = pid
        except BaseException:
            logger.exception("Could not fork a process for job %s", self.job.id)
            return
        finally:
            self._forked.set()
        try:
            self.data, self.status = _watch(pid, source)
        finally:
            os.close(source)
            self._done.set()


def _serve(job: ClaimedJob, source: int, sink: int, parent: int) -> None:
    """The whole life of the child: run the job, write its outcome, exit."""
    code = 0
    try:
        os.close(source)
        child_process.detach(parent)
        signals.emit(signals.worker_process_init, None)
        outcome = _run_apart(job) if gevent_patch.is_patched() else child_process.run(job)
        line = messages.outcome_line(outcome, "")
        view = memoryview(line)
        while view:
            view = view[os.write(sink, view) :]
    except BaseException:
        logger.exception("The process running %s[%s] failed", text.printable(job.task_name), job.id)
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code)


def _run_apart(job: ClaimedJob) -> Outcome:
    """Under gevent: run ``job`` in a new OS thread of the child, with a hub of its own.

    The fork copied every greenlet of the worker (its loop, its heartbeat, other jobs),
    and they would run again in the child whenever its hub ran. This thread's hub knows
    none of them, and the child's first thread waits on an OS lock, so that its hub,
    where they are, never runs.
    """
    from gevent import monkey

    done = monkey.get_original("_thread", "allocate_lock")()
    window = ThreadWindow(lock=monkey.get_original("_thread", "allocate_lock")())
    ended: list[Outcome] = []

    def run() -> None:
        try:
            ended.append(executor.execute(job, call=window.call))
        except BaseException as exc:
            ended.append(endings.failure(job, exc))
        finally:
            done.release()

    # Signal handlers run in this first thread: pass the soft limit on to the job's.
    signal.signal(
        child_process.SOFT_LIMIT_SIGNAL, lambda signum, frame: window.deliver(SoftTimeLimitExceeded)
    )
    done.acquire()
    monkey.get_original("_thread", "start_new_thread")(run, ())
    done.acquire()
    return ended[0]


def _watch(pid: int, source: int) -> tuple[bytes, int]:
    """Read what the child writes until it exits; return that and its exit status."""
    data = bytearray()
    while True:
        ready, _, _ = select.select([source], [], [], _POLL)
        if not ready:
            continue
        chunk = os.read(source, 65536)
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(pid, 0)
    return bytes(data), status


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
