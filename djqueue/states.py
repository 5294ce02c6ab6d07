"""Job states, named as Celery names them."""

from __future__ import annotations

PENDING = "PENDING"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"

ALL = (PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED)
# States a worker may claim from.
WAITING = (PENDING, RETRY)
# States that never change again.
READY = frozenset({SUCCESS, FAILURE, REVOKED})
