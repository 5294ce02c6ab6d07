"""Job states, named as Celery names them."""

from __future__ import annotations

PENDING = "PENDING"
# Claimed by a worker and waiting in its buffer: not running yet (Celery's "reserved").
RECEIVED = "RECEIVED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"

ALL = (PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED)
# States a worker may claim from.
WAITING = (PENDING, RETRY)
# States of a job a worker holds under a lease (claimed, then running).
HELD = (RECEIVED, STARTED)
# States that never change again.
READY = frozenset({SUCCESS, FAILURE, REVOKED})


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
