"""A prefork child: runs the jobs its parent sends, one at a time, until it leaves.

The child leaves when its job pipe reaches end of file (the parent stopped or shrank the
pool), after the job that crosses ``--max-tasks-per-child`` or ``--max-memory-per-child``,
or when its parent dies. It never touches the parent's database connections: it opens
its own when a task first needs one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import mmap
import os
import resource
import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

from django.db import close_old_connections, connections

from djqueue.core import endings, executor, signals, text
from djqueue.core.exceptions import SoftTimeLimitExceeded
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.runtime.interrupt import ThreadWindow
from djqueue.runtime.pools import messages

logger = logging.getLogger("djqueue.worker")

_PR_SET_PDEATHSIG = 1
# The parent sends this to raise SoftTimeLimitExceeded in the running task.
SOFT_LIMIT_SIGNAL = signal.SIGUSR1
# The parent sends this after writing the number of another signal into the child's
# slot (revoke(terminate=True, signal=...)): the child then takes that signal as a
# process whose handlers were never changed would (see _deliver).
DELIVER_SIGNAL = signal.SIGUSR2
# Bytes of a child's slot: a signal number, shared with the parent across the fork.
SLOT_SIZE = 4
# Open while the task's own code runs: a signal that comes before or after (between
# jobs, while the outcome is written) raises nothing.
_window = ThreadWindow()
# This child's slot (set in serve()): where the parent writes the signal it asks for.
_slot: mmap.mmap | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """When a child is replaced: after this many jobs, or above this resident memory."""

    max_tasks: int | None = None
    max_memory_kb: int | None = None


def retire_reason(limits: Limits, jobs_done: int, memory_kb: int) -> str:
    """Why a child that ran ``jobs_done`` jobs and holds ``memory_kb`` leaves ("": stays)."""
    if limits.max_tasks is not None and jobs_done >= limits.max_tasks:
        return f"it ran {jobs_done} job(s), the --max-tasks-per-child limit"
    if limits.max_memory_kb is not None and memory_kb > limits.max_memory_kb:
        return (
            f"it uses {memory_kb} KB of memory, over the --max-memory-per-child limit of "
            f"{limits.max_memory_kb} KB"
        )
    return ""


def memory_kb_of(pid: int) -> int | None:
    """Process ``pid``'s resident memory in KB; None where the system does not say
    (no ``/proc``) or the process is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


def memory_kb() -> int:
    """This process's resident memory in KB (its peak where the current size is unknown)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        # ru_maxrss is in KB on Linux and in bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak
    return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


def serve(
    jobs_fd: int,
    outcomes_fd: int,
    limits: Limits,
    index: int,
    inherited: Iterable[int],
    slot: mmap.mmap | None = None,
) -> NoReturn:
    """The whole life of a freshly forked child; ends the process, never returns."""
    code = 0
    try:
        parent = os.getppid()
        _detach(index, parent, inherited, slot)
        signals.emit(signals.worker_process_init, None)
        with open(jobs_fd, "rb") as jobs, open(outcomes_fd, "wb") as outcomes:
            _serve(jobs, outcomes, limits, parent)
    except BaseException:
        logger.exception("Child process %d failed", os.getpid())
        code = 1
    finally:
        with contextlib.suppress(Exception):
            connections.close_all()  # its own connections only: it never had the parent's
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code)


def _detach(index: int, parent: int, inherited: Iterable[int], slot: mmap.mmap | None) -> None:
    """Leave the parent's signals and pipes to the parent; die with it."""
    for fd in inherited:
        # The other children's pipe ends: holding them would hide their end of file.
        with contextlib.suppress(OSError):
            os.close(fd)
    detach(parent, slot)
    threading.current_thread().name = f"djqueue-child-{index}"


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (elsewhere: checked per job)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _serve(jobs: BinaryIO, outcomes: BinaryIO, limits: Limits, parent: int) -> None:
    # Reading /proc costs three system calls a job: only when there is a limit to check.
    measure = limits.max_memory_kb is not None
    for done, line in enumerate(jobs, start=1):
        job = messages.read_job(line)
        outcome = _run(job)
        reason = retire_reason(limits, done, memory_kb() if measure else 0)
        outcomes.write(messages.outcome_line(outcome, reason))
        outcomes.flush()
        if reason or os.getppid() != parent:
            return


def _soft_limit(signum: int, frame: object) -> None:
    _window.raise_if_open(SoftTimeLimitExceeded("the soft time limit passed"))


def _run(job: ClaimedJob) -> Outcome:
    try:
        return executor.execute(job, call=_window.call)
    except BaseException as exc:
        # Whatever escapes the executor must still end the job, as in the worker.
        logger.exception("Task %s[%s] crashed the executor", text.printable(job.task_name), job.id)
        return endings.failure(job, exc)
    finally:
        with contextlib.suppress(Exception):
            # Tasks may use the ORM: let Django retire stale connections between jobs.
            close_old_connections()


def fork() -> int:
    """``os.fork()`` while no thread is halfway through writing a log record.

    A thread writing to a stream at the moment of the fork would leave the stream's
    lock held forever in the child; logging's own fork hook only resets its locks.
    """
    handlers = _log_handlers()
    for handler in handlers:
        handler.acquire()
    pid = os.fork()
    if pid != 0:
        for handler in reversed(handlers):
            handler.release()
    return pid


def _log_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        each
        for each in logging.Logger.manager.loggerDict.values()
        if isinstance(each, logging.Logger)
    ]
    found: dict[int, logging.Handler] = {}
    for each in loggers:
        for handler in each.handlers:
            found.setdefault(id(handler), handler)
    return [found[key] for key in sorted(found)]


def detach(parent: int, slot: mmap.mmap | None = None) -> None:
    """In a freshly forked child: leave stopping to the parent, die with it; with a
    ``slot``, take the signals the parent asks for through it (:func:`ask`)."""
    # The parent decides when a child stops: a SIGTERM or Ctrl-C sent to the whole
    # process group must not interrupt the job of a warm shutdown.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    signal.signal(SOFT_LIMIT_SIGNAL, _soft_limit)
    if slot is not None:
        global _slot
        _slot = slot
        signal.signal(DELIVER_SIGNAL, _deliver)


def ask(slot: mmap.mmap, signum: int) -> None:
    """In the parent: have the child of ``slot`` take ``signum`` once it gets
    ``DELIVER_SIGNAL`` (the caller sends that next)."""
    slot[:SLOT_SIZE] = int(signum).to_bytes(SLOT_SIZE, "little")


def _deliver(signum: int, frame: object) -> None:
    """Take the signal the parent asked for as an unchanged process would: a signal
    this child ignores (SIGTERM, SIGINT, SIGQUIT: those sent to the whole process group
    are the parent's to act on) gets its default action, which ends the process; one
    the task's code handles reaches that handler."""
    wanted = int.from_bytes(_slot[:SLOT_SIZE], "little") if _slot is not None else 0
    if not wanted:
        return
    if wanted == DELIVER_SIGNAL or signal.getsignal(wanted) in (signal.SIG_IGN, None):
        signal.signal(wanted, signal.SIG_DFL)
    os.kill(os.getpid(), wanted)


def run(job: ClaimedJob) -> Outcome:
    """Run ``job`` in this (child) process; its soft limit comes as ``SOFT_LIMIT_SIGNAL``."""
    return _run(job)
