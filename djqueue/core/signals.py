"""Django signals sent around a task's life and a worker's, with Celery's names and
keyword arguments (docs/monitoring.md lists them: when, arguments, process).

A receiver that raises is logged (with its traceback) and changes nothing: not the
job's outcome, not the send, not the worker.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("djqueue.signals")

# Sending (in the process that sends) -------------------------------------------------

# Before the rows are written; sender: the task name. body: (args, kwargs, embed),
# exchange: "", routing_key: the queue, headers: {"id", "task", "eta", "expires",
# "retries", "priority", ...}, properties, declare, retry_policy.
before_task_publish = Signal()
# Once the rows are written (inside the caller's transaction, which may still roll
# back); sender: the task name; body, exchange, routing_key, headers.
after_task_publish = Signal()
# djqueue's own, after the rows are written: sender the task, job_ids.
task_enqueued = Signal()

# Running (where the job runs: the worker, or a prefork child) -------------------------

# sender: the task; task_id, task, args, kwargs (and request, djqueue's own).
task_prerun = Signal()
# After the task and its outcome's signal, whatever came of it; sender: the task;
# task_id, task, args, kwargs, retval (the return value or the exception), state.
task_postrun = Signal()
# sender: the task; result (the value the task returned) (and task_id, djqueue's own).
task_success = Signal()
# sender: the task; task_id, exception, args, kwargs, traceback (the traceback object),
# einfo (djqueue.exceptions.ExceptionInfo).
task_failure = Signal()
# sender: the task; request, reason (the Retry exception; its ``exc`` is the cause),
# einfo (and countdown, eta: djqueue's own).
task_retry = Signal()
# sender: the task, or None when its name is not registered here; request, terminated,
# signum, expired (and reason, djqueue's own).
task_revoked = Signal()
# A job whose name no task of this process is registered under; sender None; name, id,
# message (the claimed job), exc (the NotRegistered error).
task_unknown = Signal()
# A job whose arguments cannot be decoded; sender None; message (the claimed job), exc.
task_rejected = Signal()
# A worker took a job and hands it to its pool (before it runs); sender: the Worker
# (Celery's consumer); request (the job's request, as self.request will read).
task_received = Signal()

# Worker (the runworker process) -----------------------------------------------------

# First thing a worker does, before its pool exists; sender: the worker's hostname;
# instance (the Worker), conf (the DJQUEUE settings as read), options (dict).
celeryd_init = Signal()
# Before the worker registers and starts its pool; sender: the Worker.
worker_init = Signal()
# Once it serves; sender: the Worker.
worker_ready = Signal()
# In each process forked to run jobs (a prefork child, the process of a quarantined
# job) before its first job, and in a solo worker's own process when its pool starts;
# sender None, no arguments. Threads and gevent pools do not send it (as in Celery).
worker_process_init = Signal()
# When a shutdown begins (a signal, or control's shutdown); sender: the worker's
# hostname; sig (the signal's name, such as "SIGTERM"; None for a control command),
# how ("Warm" or "Cold"), exitcode (what the worker will exit with).
worker_shutting_down = Signal()
# Once it has stopped (after a warm shutdown); sender: the Worker.
worker_shutdown = Signal()

# Beat (the runbeat process) ---------------------------------------------------------

# When the scheduler starts, before its first look at the schedule; sender: the Beat.
beat_init = Signal()

NAMES = (
    "before_task_publish",
    "after_task_publish",
    "task_enqueued",
    "task_prerun",
    "task_postrun",
    "task_success",
    "task_failure",
    "task_retry",
    "task_revoked",
    "task_unknown",
    "task_rejected",
    "task_received",
    "celeryd_init",
    "worker_init",
    "worker_ready",
    "worker_process_init",
    "worker_shutting_down",
    "worker_shutdown",
    "beat_init",
)


def _fresh_locks() -> None:
    """In a forked child: new locks for the signals. A thread of the parent may have
    held one at the fork (sending a signal), and would never release the child's copy."""
    for name in NAMES:
        globals()[name].lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks)


def emit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` to its receivers (if any); log receivers' errors instead of raising."""
    # Most signals have no receiver at all: a worker sends three per job, and asking
    # whether any listens to this sender costs more than the rest of a no-op job's signals.
    if not signal.receivers or not signal.has_listeners(sender):
        return
    for receiver, response in signal.send_robust(sender, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "Signal receiver %r failed: %s",
                receiver,
                response,
                exc_info=(type(response), response, response.__traceback__),
            )
