"""The worker loop's clock: what time it is, and waiting for a while.

The loop reads the time and waits only through a :class:`Clock`, so that its unit
tests can move time by hand (a worker frozen past its lease is a clock that jumps) and
never wait for real.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class Clock(Protocol):
    """Seconds that only move forward, and waits measured in them."""

    def now(self) -> float:
        """Seconds on a clock that keeps counting while the machine or process is stopped."""

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until ``event`` is set or ``seconds`` have passed; return whether it is set."""


class SystemClock:
    """The machine's boot-time clock (monotonic where the system has none)."""

    def now(self) -> float:
        return time.clock_gettime(_BOOTTIME)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)
