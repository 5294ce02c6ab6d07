"""Task limits and unique keys: parse and check options, and compute per-call keys.

Everything here runs in the sending process (at decoration or enqueue time). The limits
are enforced by the database, in :mod:`djqueue.db.broker` and :mod:`djqueue.db.sql`.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(-?\d+)\s*/\s*([a-zA-Z]+)\s*$")
ACCEPTED_RATES = 'a whole number of starts above 0 per s, m or h: "10/s", "100/m", "1000/h"'
# Keys are compared through a B-tree index, whose entries must stay well under 2 kB.
MAX_KEY_LENGTH = 1000

KeySource = str | Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` starts in any ``period`` seconds, across the whole cluster."""

    count: int
    period: float


def parse_rate(value: object) -> Rate:
    """``"10/s"``, ``"100/m"``, ``"1000/h"`` as a :class:`Rate`; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f'rate_limit must be a string like "10/s", not {value!r}')
    found = _RATE.match(value)
    if found is None:
        raise ValueError(f"rate_limit {value!r} is malformed; accepted: {ACCEPTED_RATES}")
    count, unit = int(found[1]), found[2]
    if unit not in PERIODS:
        raise ValueError(
            f"rate_limit {value!r} has an unknown unit {unit!r}; accepted: {ACCEPTED_RATES}"
        )
    if count <= 0:
        raise ValueError(
            f"rate_limit {value!r} allows no starts at all; accepted: {ACCEPTED_RATES}"
        )
    return Rate(count, PERIODS[unit])


def check_concurrency(limit: object, key: object) -> int | None:
    """Validate ``concurrency_limit`` and ``concurrency_key``; return the limit."""
    if key is not None and limit is None:
        raise ValueError("concurrency_key needs concurrency_limit (how many may run at once)")
    if key is not None and not _is_key_source(key):
        raise ValueError(f"concurrency_key must be a string template or a callable, not {key!r}")
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"concurrency_limit must be a whole number of 1 or more, not {limit!r}")
    return limit


def check_unique(key: object, unique_for: object) -> float | None:
    """Validate ``unique_key`` and ``unique_for``; return the window in seconds."""
    if key is not None and not _is_key_source(key):
        raise ValueError(f"unique_key must be a string template or a callable, not {key!r}")
    if unique_for is None:
        return None
    if isinstance(unique_for, bool) or not isinstance(unique_for, int | float):
        raise ValueError(f"unique_for must be a number of seconds, not {unique_for!r}")
    if unique_for <= 0:
        raise ValueError(f"unique_for must be more than 0 seconds, not {unique_for!r}")
    return float(unique_for)


def _is_key_source(value: object) -> bool:
    return isinstance(value, str) or callable(value)


def compute_key(
    source: KeySource,
    label: str,
    task_name: str,
    signature: inspect.Signature | None,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> str:
    """The key of one call, prefixed with the task name so tasks never share keys.

    A callable gets the call's arguments; a string is a ``str.format`` template filled
    with the arguments by parameter name (``"report:{user_id}"``).
    """
    if callable(source):
        made = source(*args, **kwargs)
    else:
        made = source.format(**_arguments(signature, args, kwargs, label))
    if not isinstance(made, str | int):
        raise TypeError(f"{label} of {task_name} must give a string, not {made!r}")
    key = f"{task_name}:{made}"
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"{label} of {task_name} is over {MAX_KEY_LENGTH} characters")
    return key


def call_key(task_name: str, args_json: str, kwargs_json: str) -> str:
    """The key of a call when only ``unique_for`` is given: its task and arguments."""
    digest = hashlib.sha256(f"{args_json}\x00{kwargs_json}".encode()).hexdigest()
    return f"{task_name}:{digest}"


def _arguments(
    signature: inspect.Signature | None,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    label: str,
) -> dict[str, Any]:
    if signature is None:
        return dict(kwargs)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"cannot compute {label}: {exc}") from None
    bound.apply_defaults()
    return dict(bound.arguments)
