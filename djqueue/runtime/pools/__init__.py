"""Worker pools: where claimed jobs run. All share the small :class:`base.Pool` interface."""

from __future__ import annotations

from collections.abc import Callable

from djqueue.runtime.pools.base import Pool, Runner, Terminating
from djqueue.runtime.pools.child import Limits
from djqueue.runtime.pools.prefork import PreforkPool
from djqueue.runtime.pools.solo import SoloPool
from djqueue.runtime.pools.threads import ThreadPool


def _gevent(runner: Runner, concurrency: int) -> Pool:
    """The gevent pool, imported only when chosen: djqueue needs no gevent otherwise."""
    try:
        from djqueue.runtime.pools import gevent
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in ("gevent", "greenlet"):
            raise
        from django.core.management.base import CommandError

        raise CommandError("--pool gevent needs gevent: pip install gevent") from exc
    return gevent.GeventPool(runner, concurrency)


POOLS: dict[str, Callable[[Runner, int], Pool]] = {
    "prefork": PreforkPool,
    "solo": SoloPool,
    "threads": ThreadPool,
    "gevent": _gevent,
}


DEFAULT = "prefork"


def create(name: str, runner: Runner, concurrency: int, limits: Limits | None = None) -> Pool:
    """Build the pool called ``name``; ``limits`` (when to replace a child) need prefork."""
    try:
        factory = POOLS[name]
    except KeyError:
        raise ValueError(
            f"unknown pool {name!r}; choose one of: {', '.join(sorted(POOLS))}"
        ) from None
    if name == "prefork":
        return PreforkPool(runner, concurrency, limits)
    if limits is not None and limits != Limits():
        raise ValueError(f"child limits apply to the prefork pool only, not to {name}")
    return factory(runner, concurrency)


def kill(pool: Pool) -> None:
    """Stop every running job of ``pool`` now, if it can (cold shutdown)."""
    if isinstance(pool, Terminating):
        pool.kill()
