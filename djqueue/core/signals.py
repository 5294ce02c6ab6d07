"""Django signals sent as jobs move through their life, named as Celery names them.

Each is sent with the task object as ``sender``. A receiver that raises is logged and
does not change the job's outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("djqueue.signals")

# Sent by the process that enqueues: task, job_ids (a list of UUIDs).
task_enqueued = Signal()
# Sent where the job runs, before the task function: task, task_id, args, kwargs, request.
task_prerun = Signal()
# Sent after the task function, whatever came of it: task, task_id, args, kwargs,
# retval (the return value or the exception), state.
task_postrun = Signal()
# task, task_id, result.
task_success = Signal()
# task, task_id, exception, traceback (text).
task_failure = Signal()
# task, task_id, reason (the exception, or None), countdown, eta.
task_retry = Signal()
# task (or None for an unknown task name), task_id, reason ("expired", "revoked").
task_revoked = Signal()
# Sent by a worker once it serves / once it has stopped: worker (the Worker object).
worker_ready = Signal()
worker_shutdown = Signal()


def emit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` to its receivers (if any); log receivers' errors instead of raising."""
    if not signal.has_listeners(sender):
        return
    for receiver, response in signal.send_robust(sender, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "Signal receiver %r failed: %s",
                receiver,
                response,
                exc_info=(type(response), response, response.__traceback__),
            )
