"""``App``: the app object of a Celery project's ``proj/celery.py``, so that file runs
with its import line changed (``from djqueue import App as Celery``).

djqueue needs no app object: tasks register themselves, settings are Django's, and
workers find every installed app's ``tasks.py``. ``App`` accepts the calls such a file
makes, with those meanings, and refuses the ones djqueue cannot honour, saying what to
do instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps

from djqueue.client import canvas, decorator
from djqueue.core import registry

if TYPE_CHECKING:
    from djqueue.client.canvas import Signature
    from djqueue.client.definition import Task
    from djqueue.client.result import AsyncResult
    from djqueue.client.result_set import GroupResult

# What @app.task gives: the task, to type checkers (until the apps are ready, at run time,
# a LazyTask that stands for it).
TaskDecorator = Callable[[Callable[..., Any]], "Task[..., Any]"]

# The only configuration source djqueue reads: Django's settings, CELERY_ names.
_DJANGO_SETTINGS = "django.conf:settings"
_NAMESPACE = "CELERY"

# Tasks declared with ``@app.task`` before Django's apps were ready (``proj/celery.py``
# is imported with the settings), made when djqueue's app is ready.
_pending: list[LazyTask] = []
_lock = threading.Lock()


class LazyTask:
    """A task declared with ``@app.task``: made (and registered) once Django's apps are
    ready; every attribute and call goes to that task."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self._fn = fn
        self._options = options
        self._task: Task[..., Any] | None = None
        # The name the task will have (Task's rule), to be found by it before it is made.
        self._name = options.get("name") or f"{fn.__module__}.{fn.__qualname__}"

    def _made(self) -> Task[..., Any]:
        with _lock:
            if self._task is None:
                self._task = decorator.task(**self._options)(self._fn)
            return self._task

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._made(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._made()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self._fn.__module__}.{self._fn.__qualname__} (declared on an App)>"


def make_pending_tasks() -> None:
    """Make the tasks declared before the apps were ready (called by djqueue's app once
    it has loaded every app's tasks)."""
    with _lock:
        waiting = list(_pending)
        _pending.clear()
    for declared in waiting:
        declared._made()


def _resolve(name: str) -> Any:
    """The task ``name`` if it was declared with ``@app.task`` and is not made yet (one
    declared while other apps were still getting ready, after djqueue's app was)."""
    with _lock:
        found = next((item for item in _pending if item._name == name), None)
        if found is not None:
            _pending.remove(found)
    return None if found is None else found._made()


class App:
    """Stands in for ``Celery("proj")``: ``config_from_object``, ``autodiscover_tasks``,
    ``task``, ``send_task``, ``control``, ``AsyncResult``, ``GroupResult``, ``signature``.
    """

    def __init__(
        self,
        main: str | None = None,
        *,
        broker: str | None = None,
        backend: str | None = None,
        **options: Any,
    ) -> None:
        # broker= and backend= name services djqueue does without (the database is
        # both), as CELERY_BROKER_URL does; they are accepted and have no effect.
        if options:
            names = ", ".join(sorted(options))
            raise TypeError(
                f"djqueue's App takes main, broker and backend only, not {names}; set the "
                "matching CELERY_ settings in settings.py instead (include= is "
                "CELERY_IMPORTS), see docs/celery-migration.md"
            )
        self.main = main

    def __repr__(self) -> str:
        return f"<djqueue App {self.main or '__main__'}>"

    def config_from_object(
        self, obj: Any, silent: bool = False, force: bool = False, namespace: str | None = None
    ) -> None:
        """Accept Django's settings with the ``CELERY`` namespace, which djqueue reads."""
        from django.conf import settings

        source = obj if obj is settings else str(obj)
        if (source is not settings and source != _DJANGO_SETTINGS) or namespace != _NAMESPACE:
            raise ValueError(
                f"djqueue reads its configuration from Django's settings, with the "
                f"CELERY_ prefix, only (config_from_object({_DJANGO_SETTINGS!r}, "
                f"namespace={_NAMESPACE!r})); got config_from_object({obj!r}, "
                f"namespace={namespace!r}). Move those settings into settings.py as "
                "CELERY_ names"
            )

    def autodiscover_tasks(
        self,
        packages: Sequence[str] | Callable[[], Sequence[str]] | None = None,
        related_name: str | None = "tasks",
        force: bool = False,
    ) -> None:
        """Nothing to do: djqueue loads the ``tasks`` module of every installed app."""
        if related_name != "tasks":
            raise ValueError(
                f"djqueue loads the 'tasks' module of every installed app; to load "
                f"{related_name!r} modules too, list them in CELERY_IMPORTS"
            )

    def task(self, *args: Any, **options: Any) -> Task[..., Any] | TaskDecorator:
        """``@app.task`` and ``@app.task(...)``: the same as ``@djqueue.task``; declared
        before Django's apps are ready, the task is made when they are."""
        if args and callable(args[0]) and len(args) == 1:
            return self._declare(args[0], options)
        if args:
            raise TypeError("app.task takes the function, or options as keywords")
        return lambda fn: self._declare(fn, options)

    shared_task = task

    def _declare(self, fn: Callable[..., Any], options: dict[str, Any]) -> Task[..., Any]:
        if apps.ready:
            return cast("Task[..., Any]", decorator.task(**options)(fn))
        declared = LazyTask(fn, options)
        with _lock:
            _pending.append(declared)
        registry.add_resolver(_resolve)
        return cast("Task[..., Any]", declared)

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        """``djqueue.send_task``."""
        # Imported here, as below: sending, results and control read djqueue's models,
        # which cannot be imported while the settings (and so proj/celery.py, which
        # makes the App) are being imported; these run later, once the apps are ready.
        from djqueue.client import sending

        return sending.send_task(name, args, kwargs, **options)

    def signature(self, *args: Any, **options: Any) -> Signature[Any]:
        """``djqueue.signature``."""
        return canvas.signature(*args, **options)

    @property
    def AsyncResult(self) -> type[AsyncResult[Any]]:
        """``djqueue.AsyncResult``."""
        from djqueue.client import result

        return result.AsyncResult

    @property
    def GroupResult(self) -> type[GroupResult]:
        """``djqueue.GroupResult``."""
        from djqueue.client import result_set

        return result_set.GroupResult

    @property
    def control(self) -> ModuleType:
        """``app.control.revoke(...)``, ``app.control.inspect()``: :mod:`djqueue.control`."""
        from djqueue.client import control

        return control
