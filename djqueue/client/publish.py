"""Sending again after a lost connection: ``apply_async(retry=, retry_policy=)``.

With a database as the broker, publishing is an INSERT. Outside a transaction
(autocommit), an INSERT whose connection was lost is tried again on a new connection,
as Celery tries a publish again on a new broker connection. Inside a transaction it is
never tried again: the transaction is gone with its connection, and the caller's other
writes with it, so the error must reach the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import IntegrityError, InterfaceError, OperationalError

from djqueue.db import reconnect

T = TypeVar("T")

_KEYS = frozenset({"max_retries", "interval_start", "interval_step", "interval_max"})


@dataclass(frozen=True)
class Policy:
    """Celery's ``retry_policy``: tries after the first, and the waits between them."""

    max_retries: int | None = 3
    interval_start: float = 0.0
    interval_step: float = 0.2
    interval_max: float = 0.2

    def wait(self, retries: int) -> float:
        """Seconds before try number ``retries + 1`` after the first."""
        return min(self.interval_start + retries * self.interval_step, self.interval_max)


def policy(retry: bool, given: dict[str, Any] | None) -> Policy | None:
    """The policy to send with, or None when ``retry`` is off."""
    if given is None:
        return Policy() if retry else None
    if not isinstance(given, dict) or set(given) - _KEYS:
        raise TypeError(f"retry_policy takes a dict with {', '.join(sorted(_KEYS))}, not {given!r}")
    made = Policy(**given)
    for name in ("interval_start", "interval_step", "interval_max"):
        value = getattr(made, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"retry_policy {name} must be seconds (0 or more), not {value!r}")
    if made.max_retries is not None and (
        isinstance(made.max_retries, bool)
        or not isinstance(made.max_retries, int)
        or made.max_retries < 0
    ):
        raise ValueError(f"retry_policy max_retries must be 0 or more, not {made.max_retries!r}")
    return made if retry else None


def send(insert: Callable[[], T], chosen: Policy | None, already: Callable[[], T | None]) -> T:
    """Run ``insert``; after a lost connection outside a transaction, run it again.

    A lost reply may hide an INSERT that committed; the next try then meets its own
    job as a duplicate id, and ``already`` (what the INSERT would have returned, or None
    when the jobs are not there) answers instead.
    """
    retries = 0
    while True:
        try:
            return insert()
        except IntegrityError:
            found = already() if retries else None
            if found is None:
                raise
            return found
        except (OperationalError, InterfaceError):
            # Dropped whether or not it is tried again: a later call starts afresh.
            if not reconnect.drop_if_lost() or chosen is None:
                raise
            if chosen.max_retries is not None and retries >= chosen.max_retries:
                raise
        time.sleep(chosen.wait(retries))
        retries += 1
