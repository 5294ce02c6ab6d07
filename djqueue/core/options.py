"""The options a job is sent with, and what ``self.request`` tells of a job's place.

:class:`JobOptions` is the one list of the ``apply_async`` options that shape a job;
``apply_async``, ``Task.prepare``, signatures and the workflow planner all take it. A job
sent with options of its own (``headers``, ``shadow``, ``routing_key``,
``ignore_result``, ``time_limit``, ``soft_time_limit``), from inside another task
(``root_id``, ``parent_id``), or as part of a workflow carries them in its continuation
(``Job.workflow``, encoded JSON; ``"options"`` holds the per-call ones). A plain job
carries nothing and pays nothing. :func:`read` reads that JSON back; it never trusts it
to name code: callbacks are only shown, as data.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict


class JobOptions(TypedDict, total=False):
    """The options of Celery's ``apply_async`` that shape one job: what ``Task.prepare``
    takes and what a signature may carry (``apply_async`` takes ``link``, ``link_error``,
    ``retry`` and ``retry_policy`` besides, which act on the sending, not on the job).

    ``headers`` and the options after it are per-call: they travel in the job's
    continuation, and :func:`read` reads them back.
    """

    countdown: float | datetime.timedelta | None
    eta: datetime.datetime | None
    expires: float | datetime.timedelta | datetime.datetime | None
    queue: str | None
    priority: int | None
    task_id: str | uuid.UUID | None
    headers: dict[str, Any] | None
    shadow: str | None
    routing_key: str | None
    ignore_result: bool | None
    time_limit: float | None
    soft_time_limit: float | None


# Their names, in that order.
JOB_OPTIONS: tuple[str, ...] = tuple(JobOptions.__annotations__)


def check_names(given: Iterable[str], known: Collection[str], call: str) -> None:
    """Raise ``TypeError`` for a name in ``given`` that is not ``known``, as Python does
    for a keyword that a function does not take (the options arrive as ``**options``)."""
    for name in given:
        if name not in known:
            raise TypeError(f"{call}() got an unexpected keyword argument {name!r}")


@dataclass(frozen=True)
class Carried:
    """What a claimed job's continuation says about it."""

    headers: dict[str, Any] = field(default_factory=dict)
    shadow: str = ""
    routing_key: str = ""
    ignore_result: bool | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    root_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    group: uuid.UUID | None = None
    chain: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    errbacks: list[dict[str, Any]] = field(default_factory=list)


NOTHING = Carried()


def read(workflow: str | None) -> Carried:
    """The options and workflow place in ``workflow`` (a job's continuation JSON).

    A continuation that cannot be read (a row written by hand) reads as nothing rather
    than stopping the job.
    """
    if not workflow:
        return NOTHING
    try:
        data = json.loads(workflow)
    except ValueError:
        return NOTHING
    if not isinstance(data, dict):
        return NOTHING
    given = data.get("options")
    given = given if isinstance(given, dict) else {}
    headers = given.get("headers")
    return Carried(
        headers=dict(headers) if isinstance(headers, dict) else {},
        shadow=_text(given.get("shadow")),
        routing_key=_text(given.get("routing_key")),
        ignore_result=(
            given["ignore_result"] if isinstance(given.get("ignore_result"), bool) else None
        ),
        time_limit=_seconds(given.get("time_limit")),
        soft_time_limit=_seconds(given.get("soft_time_limit")),
        root_id=_id(given.get("root_id")),
        # The step before it in a chain, or the job it is a link callback of; else the
        # task that sent it (Celery sends later steps from the step before).
        parent_id=_id(data.get("parent")) or _id(given.get("parent_id")),
        group=_id(data.get("group")),
        # Celery keeps the steps still to come last-first (the next one is popped).
        chain=[_step(step) for step in reversed(_list(data.get("next")))],
        callbacks=[_signature(item) for item in _list(data.get("link"))],
        errbacks=[_signature(item) for item in _list(data.get("link_error"))],
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _id(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _step(step: dict[str, Any]) -> dict[str, Any]:
    """A chain step as Celery's ``request.chain`` shows it (the job exists already)."""
    return {"id": step.get("id"), "options": {"task_id": step.get("id")}}


def _signature(item: dict[str, Any]) -> dict[str, Any]:
    """A callback as Celery's signature dict: task, args, kwargs, options, immutable."""
    return {
        "task": item.get("task_name"),
        "args": item.get("args", []),
        "kwargs": item.get("kwargs", {}),
        "options": {"task_id": item.get("id"), "queue": item.get("queue")},
        "immutable": not item.get("pass", True),
    }
