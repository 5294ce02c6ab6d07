"""``--autoscale MAX,MIN``: grow a pool toward MAX while jobs wait, shrink toward MIN when idle."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from djqueue.runtime.pools.base import Scalable

logger = logging.getLogger("djqueue.worker")


def next_size(
    size: int, demand: int, low: int, high: int, quiet_for: float, keepalive: float
) -> int:
    """The pool size to aim for now.

    ``demand`` is jobs running plus jobs waiting; ``quiet_for`` is how long demand has
    stayed below ``size``. Growth is immediate, since waiting jobs are late already;
    shrinking waits ``keepalive`` seconds, so that a short lull does not cost a restart.
    """
    if demand > size:
        return max(low, min(high, demand))
    if demand < size and quiet_for >= keepalive:
        return max(low, min(high, demand))
    return max(low, min(high, size))


@dataclass
class Autoscaler:
    """Resizes ``pool`` between ``low`` and ``high`` slots; call :meth:`tick` often."""

    pool: Scalable
    low: int
    high: int
    keepalive: float
    _busy_at: float = 0.0

    def tick(self, now: float | None = None) -> int:
        """Look at the pool's load once and resize it if needed; return the size aimed for."""
        now = time.monotonic() if now is None else now
        load = self.pool.load()
        demand = load.busy + load.waiting
        if demand >= load.size or not self._busy_at:
            self._busy_at = now
        size = next_size(
            load.size, demand, self.low, self.high, now - self._busy_at, self.keepalive
        )
        if size != load.size:
            verb = "grows" if size > load.size else "shrinks"
            logger.info("Autoscale: pool %s from %d to %d.", verb, load.size, size)
            self.pool.resize(size)
            self._busy_at = now
        return size
