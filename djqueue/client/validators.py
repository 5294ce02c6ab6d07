"""Checks of what a task is declared and called with: each returns the value it accepts
or raises with what was wrong and what to do. Used by ``Task``, the job builder and the
worker's command line (``--time-limit``, ``--soft-time-limit``)."""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from django.utils import timezone

PRIORITY_RANGE = (-100, 100)


def parameter_names(fn: Callable[..., Any], bind: bool) -> list[str]:
    """The names of ``fn``'s positional parameters (without the task itself when bound)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    positional = [
        p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return positional[1:] if bind else positional


def call_signature(fn: Callable[..., Any], bind: bool) -> inspect.Signature | None:
    """``fn``'s signature as callers see it (without the task itself when bound)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if not bind:
        return signature
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def check_time_limits(
    hard: float | None,
    soft: float | None,
    owner: str,
    names: tuple[str, str] = ("time_limit", "soft_time_limit"),
) -> tuple[float | None, float | None]:
    """Validate a hard and a soft time limit (seconds); return them as floats.

    ``names`` are what the caller calls the two limits (task options, or worker flags),
    so that an error names what the user wrote.
    """
    hard_name, soft_name = names
    for label, value in ((hard_name, hard), (soft_name, soft)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise ValueError(
                f"{label} of {owner} must be a positive number of seconds, not {value!r}"
            )
    if hard is not None and soft is not None and soft >= hard:
        raise ValueError(
            f"{soft_name} of {owner} ({soft}s) must be below its {hard_name} ({hard}s), "
            "so that the task can clean up before it is stopped"
        )
    return (
        None if hard is None else float(hard),
        None if soft is None else float(soft),
    )


_RETRY_KWARGS = frozenset({"countdown", "eta", "max_retries"})


def check_retry_kwargs(given: dict[str, Any] | None, owner: str) -> dict[str, Any]:
    """``retry_kwargs``: what ``autoretry_for`` passes to ``retry()``."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise TypeError(f"retry_kwargs of {owner} must be a dict, not {given!r}")
    unknown = set(given) - _RETRY_KWARGS
    if unknown:
        raise TypeError(
            f"retry_kwargs of {owner} has unknown key(s) {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(_RETRY_KWARGS))}"
        )
    return dict(given)


def exception_types(
    given: Sequence[type[BaseException]], label: str, owner: str
) -> tuple[type[BaseException], ...]:
    """``given`` as a tuple of exception classes (``throws``, ``autoretry_for``)."""
    types = tuple(given) if isinstance(given, list | tuple) else (given,)
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{label} of {owner} must list exception classes, not {item!r}")
    return types


def check_priority(priority: int) -> int:
    """``priority`` if it is a whole number in ``PRIORITY_RANGE``."""
    low, high = PRIORITY_RANGE
    if not isinstance(priority, int) or isinstance(priority, bool) or not low <= priority <= high:
        raise ValueError(f"priority must be a whole number from {low} to {high}, not {priority!r}")
    return priority


def check_queue(queue: str) -> str:
    """``queue`` if it can name a queue."""
    if not isinstance(queue, str) or not queue or len(queue) > 100:
        raise ValueError(f"queue must be a non-empty name of at most 100 characters: {queue!r}")
    return queue


def seconds(value: float | datetime.timedelta, label: str) -> float:
    """``value`` (seconds, or a timedelta) as seconds; ``label`` names it in the error."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{label} must be seconds (a number) or a timedelta, not {value!r}")
    return float(value)


def aware(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` with a time zone (the current one when it has none)."""
    if not isinstance(moment, datetime.datetime):
        raise TypeError(f"expected a datetime, not {moment!r}")
    if timezone.is_naive(moment):
        # A naive moment means local time (the current time zone), as in the rest of Django.
        return timezone.make_aware(moment, timezone.get_current_timezone())
    return moment
