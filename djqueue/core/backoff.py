"""Delays between retries."""

from __future__ import annotations

import random


def countdown(
    retries: int, factor: int | bool, maximum: float, jitter: bool, default: float
) -> float:
    """Seconds before retry number ``retries + 1``.

    Without backoff (``factor`` false) this is ``default``. With backoff it is
    ``factor * 2 ** retries`` capped at ``maximum``, and with jitter a random whole
    number of seconds between 0 and that ("full jitter": it spreads retry storms).
    """
    if not factor:
        return float(default)
    delay = min(float(maximum), int(factor) * 2.0**retries)
    if jitter:
        return float(random.randint(0, int(delay)))
    return delay
