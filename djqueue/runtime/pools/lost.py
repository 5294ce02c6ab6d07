"""A child process that died: how its end is told, and what the job it ran ends with.

Used by the prefork pool and by isolated runs (a job in a forked process of its own).
"""

from __future__ import annotations

import contextlib
import os
import signal

from djqueue.core import registry, states
from djqueue.core.exceptions import NotRegistered, WorkerLostError, qualified_name
from djqueue.core.records import ClaimedJob, Outcome

# Seconds before a lost job with retries left runs again: soon, yet not in a tight loop
# for a task that kills its process every time.
LOST_RETRY_DELAY = 1.0


def lost_outcome(job: ClaimedJob, why: str) -> Outcome:
    """The end of ``job`` whose process died: RETRY if its task may retry, else FAILURE.

    The outcome says how it died (``killed``): the broker counts the kill, and a job
    that kills its process ``QUARANTINE_AFTER_KILLS`` times ends FAILURE instead.
    """
    message = f"the child process running the job {why}"
    try:
        task = registry.get(job.task_name)
    except NotRegistered:
        retry = False
    else:
        retry = task.max_retries is None or job.retries < task.max_retries
    return Outcome(
        job.id,
        job.attempt,
        job.task_name,
        states.RETRY if retry else states.FAILURE,
        error_type=qualified_name(WorkerLostError),
        error_message=message,
        retry_in=LOST_RETRY_DELAY if retry else None,
        worker=job.worker,
        killed=why,
    )


def describe_exit(status: int) -> str:
    """How a child ended, from its ``waitpid`` status, in words."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):
            return f"was killed by signal {signum} ({signal.Signals(signum).name})"
        return f"was killed by signal {signum}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
