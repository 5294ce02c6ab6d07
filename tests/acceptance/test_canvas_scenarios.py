"""Workflows run by a real worker give Celery's outcomes: a failed chain step's own
error, errbacks with Celery's arguments, nested shapes, children, and get() refused
inside a task. The same scenarios run eagerly against Celery in tests/parity."""

from __future__ import annotations

from typing import Any

import pytest

import djqueue
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _results_of(name: str, count: int) -> list[Any]:
    """The results of the ``count`` jobs of task ``name`` (the errbacks), once done."""
    jobs = Job.objects.filter(task_name=f"tests.testapp.tasks.{name}")

    def done() -> bool:
        return jobs.filter(state="SUCCESS").count() >= count

    wait_until(done, timeout=30, what=f"{count} {name} job(s) to succeed")
    return [job.result for job in jobs.order_by("id")]


@pytest.mark.django_db(transaction=True)
def test_failures_raise_the_original_error_and_call_errbacks_as_celery(
    workers: Workers,
) -> None:
    workers.start("-c", "2")

    chained = djqueue.chain(
        tasks.add.s(1, 1), tasks.fail.si("bad input"), tasks.mul.s(2), tasks.show.s()
    ).apply_async(link_error=tasks.errback_with_request.s())
    with pytest.raises(ValueError, match="bad input"):
        chained.get(timeout=30)
    with pytest.raises(ValueError, match="bad input"):
        djqueue.AsyncResult(chained.id).get(timeout=30)  # in any process
    [seen] = _results_of("errback_with_request", 1)
    assert seen == {
        "id": chained.parent.parent.id,
        "task": "tests.testapp.tasks.fail",
        "args": ["bad input"],
        "error": "ValueError: bad input",
        "traceback": True,
    }

    failed = tasks.fail.apply_async(("alone",), link_error=tasks.on_chain_error.s())
    with pytest.raises(ValueError, match="alone"):
        failed.get(timeout=30)
    assert _results_of("on_chain_error", 1) == [f"{failed.id} failed: ValueError: alone"]

    chord = djqueue.chord([tasks.add.s(1, 1), tasks.fail.si("header")], tasks.xsum.s())
    with pytest.raises(ValueError, match="header"):
        chord.apply_async().get(timeout=30)

    waiting = tasks.wait_for_sum.delay(1, 2)
    with pytest.raises(RuntimeError, match=r"inside task tests\.testapp\.tasks\.wait_for_sum"):
        waiting.get(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_nested_shapes_and_children_as_celery(workers: Workers) -> None:
    workers.start("-c", "2")

    nested = djqueue.group(
        djqueue.group(tasks.add.s(1, 1), tasks.add.s(2, 2)),
        djqueue.chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.xsum.s()),
        djqueue.chain(tasks.add.s(3, 3), tasks.mul.s(2)),
    ).apply_async()
    assert nested.get(timeout=30) == [2, 4, 6, 12]

    delayed = djqueue.chain(tasks.add.s(1, 1), tasks.mul.s(3)).apply_async(countdown=1)
    assert delayed.get(timeout=30) == 6
    assert delayed.parent.children == [delayed]

    linked = tasks.add.apply_async((2, 2), link=tasks.mul.s(10))
    assert linked.get(timeout=30) == 4
    wait_until(lambda: linked.children, timeout=30, what="the link callback to be sent")
    assert [child.get(timeout=30) for child in linked.children] == [40]

    spawner = tasks.spawn_children.delay(3)
    assert spawner.get(timeout=30) == 3
    assert [child.get(timeout=30) for child in spawner.children] == [0, 2, 4]
