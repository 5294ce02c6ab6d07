"""Routes: where a job goes when neither the call nor its task names a queue.

The ``ROUTES`` setting (Celery's ``task_routes``) takes Celery's forms:

- a dict from task name to route: ``{"shop.tasks.charge": {"queue": "payments"}}``;
  a name with ``*`` is a glob (``"shop.tasks.*"``), and a compiled regular expression
  may stand for a name; exact names are looked up first, then patterns in order;
- a router: a function ``(name, args, kwargs, options, task=None, **kw)`` that returns
  a route or None, or the dotted path of one (read from settings, never from data);
- a list or tuple of the above, tried in order until one gives a route (a list or
  tuple inside it is a sequence of ``(name, route)`` pairs).

A route is a dict with ``queue`` and optionally ``priority``, or a queue name.
Celery's AMQP keys (``exchange``, ``routing_key``...) are accepted and have no effect.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from djqueue.core import conf

Router = Callable[..., Any]

# Keys of a Celery route that only mean something to an AMQP broker.
_IGNORED_KEYS = frozenset({"exchange", "exchange_type", "routing_key", "delivery_mode"})


@dataclass(frozen=True)
class Route:
    """Where a routed job goes."""

    queue: str | None = None
    priority: int | None = None


class MapRouter:
    """Routes by task name: exact names first, then globs and patterns in order."""

    def __init__(self, pairs: Sequence[tuple[Any, Any]]) -> None:
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[re.Pattern[str], Any]] = []
        for key, route in pairs:
            if isinstance(key, re.Pattern):
                self.patterns.append((key, route))
            elif isinstance(key, str) and "*" in key:
                self.patterns.append((re.compile(fnmatch.translate(key)), route))
            elif isinstance(key, str):
                self.exact[key] = route
            else:
                raise ValueError(f"a route's key must be a task name or a pattern, not {key!r}")

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.exact:
            return self.exact[name]
        for pattern, route in self.patterns:
            if pattern.match(name):
                return route
        return None


def compile_routes(setting: Any) -> list[Router]:
    """The routers of a ``ROUTES`` value; raises ValueError on a form Celery rejects."""
    if setting is None:
        return []
    items = list(setting) if isinstance(setting, list | tuple) else [setting]
    return [_router(item) for item in items]


def _router(item: Any) -> Router:
    if isinstance(item, Mapping):
        return MapRouter(list(item.items()))
    if isinstance(item, list | tuple):
        if not all(isinstance(pair, list | tuple) and len(pair) == 2 for pair in item):
            raise ValueError(
                f"a list inside ROUTES must hold (task name, route) pairs, not {item!r}"
            )
        return MapRouter([tuple(pair) for pair in item])
    if isinstance(item, str):
        try:
            found = import_string(item)
        except ImportError as exc:
            raise ValueError(f"the router {item!r} in ROUTES cannot be imported: {exc}") from None
        return _router(found() if isinstance(found, type) else found)
    if callable(item):
        return _as_function(item)
    raise ValueError(
        f"ROUTES holds {item!r}; use a dict by task name, a router function, its dotted "
        "path, or a list of them"
    )


def _as_function(item: Any) -> Router:
    # A router class instance (Celery's style) routes with its route_for_task method.
    method = getattr(item, "route_for_task", None)
    return method if callable(method) else item  # type: ignore[no-any-return]


def route_value(value: Any, source: str) -> Route | None:
    """A router's answer as a :class:`Route`; raises ValueError when it makes no sense."""
    if value is None:
        return None
    if isinstance(value, str):
        return Route(queue=value)
    if isinstance(value, Mapping):
        unknown = set(value) - {"queue", "priority"} - _IGNORED_KEYS
        if unknown:
            raise ValueError(
                f"the route {dict(value)!r} from {source} has unknown key(s) {sorted(unknown)}; "
                "a route takes 'queue' and 'priority'"
            )
        queue = value.get("queue")
        if isinstance(queue, Mapping):  # Celery allows {"queue": {"name": ...}}
            queue = queue.get("name")
        return Route(queue=queue, priority=value.get("priority"))
    raise ValueError(
        f"a route must be a queue name or a dict with 'queue', not {value!r} (from {source})"
    )


_compiled: tuple[Any, list[Router]] | None = None


def _routers() -> list[Router]:
    global _compiled
    setting = conf.get("ROUTES")
    if _compiled is None or _compiled[0] is not setting:
        _compiled = (setting, compile_routes(setting))
    return _compiled[1]


def route(
    name: str, args: Sequence[Any], kwargs: Mapping[str, Any], task: Any = None
) -> Route | None:
    """The first route the ``ROUTES`` routers give for a call of ``name`` (None: none)."""
    if conf.get("ROUTES") is None:
        return None
    for router in _routers():
        found = route_value(router(name, tuple(args), dict(kwargs), {}, task=task), "ROUTES")
        if found is not None:
            return found
    return None
