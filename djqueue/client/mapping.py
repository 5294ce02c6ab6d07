"""``task.map``, ``task.starmap`` and ``task.chunks``: many calls of one task, few jobs.

``map`` and ``starmap`` send one job that calls the task's function on every item in
turn, in the worker, and returns the list of results (not in parallel: that is what a
group is for). ``chunks`` splits the items into parts of ``n`` and sends a group of
``starmap`` jobs. The task travels by its registered name, never as code. The builtin
tasks that run them are in :mod:`djqueue.client.builtins`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from djqueue.client import canvas
from djqueue.core import registry

if TYPE_CHECKING:
    from djqueue.client.definition import Task

MAP = "djqueue.map"
STARMAP = "djqueue.starmap"


class _Mapped(canvas.Signature[list[Any]]):
    """One job of a builtin that runs ``task`` over ``it``; sent to the task's queue."""

    builtin = MAP

    def __init__(self, task: Task[Any, Any] | str, it: Iterable[Any], **options: Any) -> None:
        target = registry.get(task) if isinstance(task, str) else task
        items = list(it)
        for item in items:
            if self.builtin == STARMAP and not isinstance(item, list | tuple):
                raise TypeError(
                    f"starmap of {target.name} takes argument tuples, not {item!r}; "
                    "use map for single arguments"
                )
            if target.typing:  # each call is checked now, not when the job runs
                target.check_arguments(item if self.builtin == STARMAP else (item,), {})
        if target.queue is not None:
            options.setdefault("queue", target.queue)
        super().__init__(
            self.builtin, (), {"task": target.name, "it": items}, options, immutable=True
        )
        self.target = target

    def __repr__(self) -> str:
        call = "(x)" if self.builtin == MAP else "(*x)"
        shown = repr(self.kwargs["it"])
        shown = shown if len(shown) <= 100 else shown[:100] + "..."
        return f"[{self.target.name}{call} for x in {shown}]"


class xmap(_Mapped):
    """``task.map(it)``: one job computing ``[task(x) for x in it]``."""

    builtin = MAP


class xstarmap(_Mapped):
    """``task.starmap(it)``: one job computing ``[task(*x) for x in it]``."""

    builtin = STARMAP


class chunks:
    """``task.chunks(it, n)``: the calls of ``it`` in jobs of ``n`` each, as a group.

    Sent (``apply_async()``, ``delay()`` or calling it), returns a ``GroupResult`` whose
    results are lists, one per chunk.
    """

    def __init__(self, task: Task[Any, Any] | str, it: Iterable[Sequence[Any]], n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"chunks takes a chunk size of at least 1, not {n!r}")
        self.task = registry.get(task) if isinstance(task, str) else task
        self.it = list(it)
        self.n = n

    def __repr__(self) -> str:
        return f"chunks({self.task.name}, {len(self.it)} calls, {self.n})"

    def group(self) -> canvas.group:
        """The group of ``starmap`` jobs, one per chunk."""
        return canvas.group([xstarmap(self.task, part) for part in _parts(self.it, self.n)])

    def apply_async(self, **options: Any) -> Any:
        """Send the chunks; ``options`` (``queue``, ``priority``) apply to every one."""
        return self.group().apply_async(**options)

    def delay(self) -> Any:
        return self.apply_async()

    def __call__(self, **options: Any) -> Any:
        return self.apply_async(**options)


def _parts(items: list[Any], n: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while part := list(itertools.islice(iterator, n)):
        yield part
