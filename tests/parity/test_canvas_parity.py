"""Differential tests: workflows run eagerly by Celery and by djqueue give the same outcome.

Celery is installed only in tox's ``celery-parity`` environment; elsewhere these tests
are skipped. The same tasks are declared for both (``Kit``), every scenario builds its
workflow from a kit and sends it, and what a user sees is compared: the value or the
state of the result and of its parents, or the exception raised where the workflow is
sent, and the calls the errbacks and callbacks received.

The same scenarios run against real workers, for djqueue, in
``tests/acceptance/test_canvas_scenarios.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

celery = pytest.importorskip("celery")

import djqueue  # noqa: E402

# What the errbacks and callbacks of the running scenario received, in order.
CALLS: list[tuple[Any, ...]] = []


@dataclass
class Kit:
    """One side's primitives and tasks, named alike."""

    chain: Any
    group: Any
    chord: Any
    add: Any
    mul: Any
    xsum: Any
    fail: Any
    new_errback: Any
    old_errback: Any
    record: Any


def _add(x: int, y: int) -> int:
    return x + y


def _mul(x: int, y: int) -> int:
    return x * y


def _xsum(numbers: list[int]) -> int:
    return sum(numbers)


def _fail(message: str) -> None:
    raise ValueError(message)


def _new_errback(request: Any, exc: BaseException, traceback: Any) -> str:
    CALLS.append(("new", request.task.rsplit(".", 1)[-1], type(exc).__name__, str(exc)))
    return "handled"


def _old_errback(task_id: str) -> str:
    CALLS.append(("old", isinstance(task_id, str)))
    return task_id


def _record(value: Any) -> Any:
    CALLS.append(("record", value))
    return value


FUNCTIONS = {
    "add": _add,
    "mul": _mul,
    "xsum": _xsum,
    "fail": _fail,
    "new_errback": _new_errback,
    "old_errback": _old_errback,
    "record": _record,
}


CELERY_APP = celery.Celery("parity", set_as_current=False)
CELERY_APP.conf.task_always_eager = True
CELERY = Kit(
    celery.chain,
    celery.group,
    celery.chord,
    **{
        name: CELERY_APP.task(name=f"parity.{name}")(function)
        for name, function in FUNCTIONS.items()
    },
)
DJQUEUE = Kit(
    djqueue.chain,
    djqueue.group,
    djqueue.chord,
    **{
        name: djqueue.task(name=f"tests.parity.canvas.{name}")(function)
        for name, function in FUNCTIONS.items()
    },
)


# Scenarios: each builds a workflow from a kit and sends it. --------------------------------

SCENARIOS: dict[str, Callable[[Kit], Any]] = {
    "chain": lambda k: k.chain(k.add.s(1, 1), k.mul.s(3), k.add.s(1)).apply_async(),
    "chain, arguments when sent": lambda k: k.chain(k.add.s(5), k.mul.s(10)).delay(2),
    "chain, middle step fails": lambda k: k.chain(
        k.add.s(1, 1), k.fail.si("bad"), k.mul.s(2)
    ).apply_async(),
    "chain, last step fails": lambda k: k.chain(k.add.s(1, 1), k.fail.si("last")).apply_async(),
    "chain with countdown": lambda k: k.chain(k.add.s(1, 1), k.mul.s(3)).apply_async(countdown=1),
    "task fails": lambda k: k.fail.delay("alone"),
    "group": lambda k: k.group(k.add.s(i, i) for i in range(4)).apply_async(),
    "group, a member fails": lambda k: k.group(
        k.add.s(1, 1), k.fail.si("member"), k.add.s(2, 2)
    ).apply_async(),
    "group of groups": lambda k: k.group(
        k.group(k.add.s(1, 1), k.add.s(2, 2)), k.add.s(3, 3)
    ).apply_async(),
    "chord in a group": lambda k: k.group(
        k.chord([k.add.s(1, 1), k.add.s(2, 2)], k.xsum.s()), k.add.s(5, 5)
    ).apply_async(),
    "chain in a chord": lambda k: k.chord(
        [k.add.s(1, 1), k.chain(k.add.s(2, 2), k.mul.s(3))], k.xsum.s()
    ).apply_async(),
    "chord, a header task fails": lambda k: k.chord(
        [k.add.s(1, 1), k.fail.si("header")], k.xsum.s()
    ).apply_async(),
    "group piped into a task": lambda k: (k.group(k.add.s(1, 1), k.add.s(2, 2)) | k.xsum.s())(),
    "chord piped into a task": lambda k: (
        k.chord([k.add.s(1, 1), k.add.s(2, 2)], k.xsum.s()) | k.add.s(10)
    )(),
    "signature piped into a chain": lambda k: (
        k.add.s(1, 1) | k.chain(k.mul.s(2), k.add.s(1))
    ).apply_async(),
    "new-style errback": lambda k: k.fail.apply_async(("oops",), link_error=k.new_errback.s()),
    "old-style errback": lambda k: k.fail.apply_async(("oops",), link_error=k.old_errback.s()),
    "both errbacks": lambda k: k.fail.apply_async(
        ("oops",), link_error=[k.new_errback.s(), k.old_errback.s()]
    ),
    "errback not called on success": lambda k: k.add.apply_async(
        (1, 1), link_error=k.new_errback.s()
    ),
    "link": lambda k: k.add.apply_async((2, 2), link=k.record.s()),
    "chain errback, once": lambda k: (
        k.chain(k.add.s(1, 1), k.fail.si("step"), k.mul.s(2))
        .on_error(k.new_errback.s())
        .apply_async()
    ),
    "group errback, each failed member": lambda k: (
        k.group(k.fail.si("a"), k.add.s(1, 1), k.fail.si("b"))
        .on_error(k.old_errback.s())
        .apply_async()
    ),
    "task on_error": lambda k: k.fail.s("x").on_error(k.new_errback.s()).delay(),
    "chain link after the last step": lambda k: _linked(
        k.chain(k.add.s(1, 1), k.mul.s(3)), k.record.s()
    ).apply_async(),
}


def _linked(node: Any, callback: Any) -> Any:
    node.link(callback)
    return node


# Comparing ---------------------------------------------------------------------------------


def _outcome(send: Callable[[], Any]) -> tuple[Any, ...]:
    """What a user sees of sending: the error raised, or the result; and the calls."""
    CALLS.clear()
    try:
        result = send()
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc), tuple(CALLS))
    return ("sent", _shape(result), tuple(CALLS))


def _shape(result: Any) -> tuple[Any, ...]:
    if hasattr(result, "results"):  # a group's result
        return ("group", tuple(_shape(member) for member in result.results))
    parents = []
    node = result.parent
    while node is not None and not hasattr(node, "results"):
        parents.append(_value(node))
        node = node.parent
    return (_value(result), tuple(parents))


def _value(result: Any) -> tuple[Any, ...]:
    state = result.state
    if state == "SUCCESS":
        return (state, result.get(propagate=False))
    error = result.result
    return (state, type(error).__name__, str(error))


@pytest.fixture
def eager(settings: Any) -> Iterator[Callable[[bool], None]]:
    def set_propagates(propagates: bool) -> None:
        CELERY_APP.conf.task_eager_propagates = propagates
        settings.DJQUEUE = {"EAGER": True, "EAGER_PROPAGATES": propagates}

    set_propagates(False)
    yield set_propagates
    CELERY_APP.conf.task_eager_propagates = False


@pytest.mark.parametrize("propagates", [False, True], ids=["returns", "propagates"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_workflow_sent_eagerly_gives_celery_s_outcome(
    scenario: str, propagates: bool, eager: Callable[[bool], None]
) -> None:
    eager(propagates)
    build = SCENARIOS[scenario]
    theirs = _outcome(lambda: build(CELERY))
    ours = _outcome(lambda: build(DJQUEUE))
    assert ours == theirs
