"""Job states, named as Celery names them, and Celery's sets of them."""

from __future__ import annotations

PENDING = "PENDING"
# Claimed by a worker and waiting in its buffer: not running yet (Celery's "reserved").
RECEIVED = "RECEIVED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
# The task raised Reject (without requeue, or with its attempts used up).
REJECTED = "REJECTED"
# The task raised Ignore: it ended without a result. The row records it so that the job
# is not taken for a lost one; what AsyncResult shows is the last state the task reported.
IGNORED = "IGNORED"

ALL = (PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED, IGNORED)
# States a worker may claim from.
WAITING = (PENDING, RETRY)
# States of a job a worker holds under a lease (claimed, then running).
HELD = (RECEIVED, STARTED)
# States that never change again: a job in one of them is finished for good. Wider than
# Celery's READY_STATES: a rejected or ignored job is finished here too, so that nothing
# waits for it forever (docs/celery-migration.md).
READY = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED, IGNORED})

# Celery's sets, as Celery defines them, for code that imports them.
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, REJECTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})


class StateQueries:
    """``ready()``, ``successful()`` and ``failed()`` for anything with a ``state``."""

    @property
    def state(self) -> str:
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the job has finished (and will never change again)."""
        return self.state in READY

    def successful(self) -> bool:
        return self.state == SUCCESS

    def failed(self) -> bool:
        return self.state == FAILURE
