"""Worker pools: where claimed jobs run. All share the small :class:`base.Pool` interface."""

from __future__ import annotations

from collections.abc import Callable

from djqueue.pools.base import Pool, Runner
from djqueue.pools.solo import SoloPool
from djqueue.pools.threads import ThreadPool


def _gevent(runner: Runner, concurrency: int) -> Pool:
    """The gevent pool, imported only when chosen: djqueue needs no gevent otherwise."""
    try:
        from djqueue.pools import gevent
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in ("gevent", "greenlet"):
            raise
        from django.core.management.base import CommandError

        raise CommandError("--pool gevent needs gevent: pip install 'djqueue[gevent]'") from exc
    return gevent.GeventPool(runner, concurrency)


POOLS: dict[str, Callable[[Runner, int], Pool]] = {
    "solo": SoloPool,
    "threads": ThreadPool,
    "gevent": _gevent,
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
