"""How a job's row reads as a result: the fields read, the state shown, the value."""

from __future__ import annotations

from typing import Any

from djqueue.core import exceptions, states

# Finished states whose error get() raises; an ignored job has no result (None).
RAISING = frozenset({states.FAILURE, states.REVOKED, states.REJECTED})
FIELDS = (
    "task_name",
    "state",
    "result",
    "error_type",
    "error_message",
    "traceback",
    "progress",
    "reported_state",
)
# Row states in which the state a task reported with update_state is what users see.
REPORTING = frozenset({states.RECEIVED, states.STARTED, states.IGNORED})


def shown_state(row: dict[str, Any]) -> str:
    """The state users see: the one the task reported while it runs, else the row's."""
    if row["reported_state"] and row["state"] in REPORTING:
        return str(row["reported_state"])
    return str(row["state"])


def value(row: dict[str, Any]) -> Any:
    """The result a finished row holds, or the error it ended with (rebuilt)."""
    state = row["state"]
    if state == states.SUCCESS:
        return row["result"]
    if state == states.REVOKED:
        return exceptions.TaskRevokedError(row["error_message"] or "revoked")
    if row["error_type"] == exceptions.CHORD_ERROR_TYPE:
        return exceptions.ChordError(row["error_message"])
    if state in (states.FAILURE, states.RETRY, states.REJECTED) and row["error_type"]:
        return exceptions.rebuild(row["error_type"], row["error_message"])
    return None
