"""Worker pools: where claimed jobs run. All share the small :class:`base.Pool` interface."""

from __future__ import annotations

from collections.abc import Callable

from djqueue.pools.base import Pool, Runner
from djqueue.pools.solo import SoloPool
from djqueue.pools.threads import ThreadPool

POOLS: dict[str, Callable[[Runner, int], Pool]] = {
    "solo": SoloPool,
    "threads": ThreadPool,
}


def create(name: str, runner: Runner, concurrency: int) -> Pool:
    """Build the pool called ``name``."""
    try:
        factory = POOLS[name]
    except KeyError:
        raise ValueError(
            f"unknown pool {name!r}; choose one of: {', '.join(sorted(POOLS))}"
        ) from None
    return factory(runner, concurrency)
