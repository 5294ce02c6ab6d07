"""A clock that moves only when told to, for the worker loop and the in-memory store."""

from __future__ import annotations

import datetime
import threading

# Any moment will do; a round one reads well in a failing test's output.
START = 1_000_000.0


class FakeClock:
    """Seconds that stand still until :meth:`advance`; waiting moves them on at once.

    One clock serves a worker and its store: the worker's ``now()`` and the database's
    ``now()`` are the same number, and a worker frozen past its lease is a clock moved
    on while the worker did nothing.
    """

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.waited: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on."""
        with self._lock:
            self._now += seconds

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Return at once: the time waited passes unless ``event`` is set already."""
        if not event.is_set():
            self.waited.append(seconds)
            self.advance(seconds)
        return event.is_set()

    def moment(self, seconds: float | None = None) -> datetime.datetime:
        """``seconds`` (default: now) as an aware datetime, as rows carry times."""
        value = self.now() if seconds is None else seconds
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
