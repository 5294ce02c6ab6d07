"""What a type checker learns from signatures and workflows: checked by mypy, never run."""

from __future__ import annotations

from typing import Any, assert_type

import djqueue
from djqueue import AsyncResult, GroupResult, Signature, chain, chord, group

from .check_tasks import add, count, greet, total


@djqueue.task
def double(x: int) -> int:
    return 2 * x


@djqueue.task
def describe(values: list[int]) -> str:
    return ", ".join(map(str, values))


def check_signatures() -> None:
    assert_type(add.s(1), Signature[int])
    assert_type(add.si(1, 2), Signature[int])
    assert_type(add.signature((1,), countdown=10), Signature[int])
    assert_type(djqueue.signature(add, (1, 2)), Signature[int])
    assert_type(djqueue.signature("orders.tasks.add", (1, 2)), Signature[Any])
    assert_type(add.s(1).delay(2), AsyncResult[int])
    assert_type(add.s(1).apply_async((2,), queue="fast").get(), int)
    assert_type(add.s(1).set(queue="fast"), Signature[int])
    assert_type(add.s(1).clone((2,)), Signature[int])
    assert_type(add.s(1).link(greet.si("done")), Signature[str])


def check_chains() -> None:
    # A chain's result is its last step's.
    assert_type(chain(add.s(1, 2), double.s()), chain[AsyncResult[int]])
    assert_type(chain(add.s(1, 2), double.s(), describe.si([1])).delay().get(), str)
    assert_type((add.s(1, 2) | double.s() | describe.si([1])).apply_async().get(), str)
    assert_type(chain([add.s(1, 2), double.s()]).delay().get(), int)
    assert_type(chain(add.s(1, 2), group(double.s(), double.s())).delay(), GroupResult)
    assert_type(add.s(1, 2) | group(double.s(), double.s()), chain[GroupResult])
    assert_type(chain(add.s(1), chain(double.s(), greet.si("x"))).delay().get(), str)
    assert_type(chain(count.s(["a"]), double.s())(), AsyncResult[int])


def check_groups_and_chords() -> None:
    assert_type(group(add.s(1, 2), greet.s("Ada")).delay(), GroupResult)
    assert_type(group(add.s(i, i) for i in range(3)).apply_async().get(), list[Any])
    assert_type(chord([add.s(1, 2), add.s(3, 4)], describe.s()), chord[AsyncResult[str]])
    assert_type(chord([add.s(1, 2)], describe.s()).delay().get(), str)
    assert_type(chord([add.s(1, 2)])(describe.s()).get(), str)
    assert_type(group(add.s(1, 2), add.s(3, 4)) | describe.s(), chord[AsyncResult[str]])
    assert_type(chord([add.s(1, 2)], total.s()) | double.s(), chord[AsyncResult[int]])


def check_dynamic_workflows(
    doubles: list[Signature[int]], steps: list[Signature[Any] | group]
) -> None:
    assert_type(chain(*doubles).delay(), AsyncResult[int])
    assert_type(chain(double.s(i) for i in range(3)).delay(), AsyncResult[int])
    # Built from steps of several kinds, a chain ends in a task or in a group.
    assert_type(chain(*steps).delay(), AsyncResult[Any] | GroupResult)
