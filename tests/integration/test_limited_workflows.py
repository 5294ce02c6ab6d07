"""Tasks with a rate or concurrency limit in workflows and with per-call options: the
limit travels with the job (claimed by the limited path, counted), and so do the
workflow and the options. Tasks with a unique key are still refused there."""

from __future__ import annotations

import pytest

import djqueue
from djqueue.core import executor
from djqueue.db import broker
from djqueue.db.models import Job
from djqueue.integrations.testing import run_pending
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_a_rate_limited_step_of_a_chain_keeps_its_limit_and_runs() -> None:
    result = djqueue.chain(tasks.add.s(1, 2), tasks.rate_limited.s()).apply_async()

    step = Job.objects.get(pk=result.id)
    assert step.gated and step.rate_limit == 5 and step.rate_period == 1.0
    run_pending()

    assert result.get(timeout=1) == 3
    assert result.parent is not None and result.parent.get(timeout=1) == 3


def test_a_group_and_a_chord_of_limited_tasks_count_under_their_limits() -> None:
    header = djqueue.group(tasks.one_at_a_time.s(0) for _ in range(3))
    result = djqueue.chord(header)(tasks.doubly_limited.s())

    rows = Job.objects.filter(task_name=tasks.one_at_a_time.name)
    assert {(row.gated, row.concurrency_limit) for row in rows} == {(True, 1)}
    body = Job.objects.get(pk=result.id)
    assert (body.rate_limit, body.concurrency_limit) == (2, 1)
    # One at a time: a claim takes one of the three, however many it asks for.
    claimed = broker.claim([body.queue], 3, "w", 30.0, limited=True)
    assert [job.task_name for job in claimed] == [tasks.one_at_a_time.name]
    broker.finish([executor.execute(job) for job in claimed])
    run_pending()

    assert result.get(timeout=1) == [0, 0, 0]


def test_per_call_options_on_a_limited_task_are_kept_with_its_limit() -> None:
    sent = tasks.rate_limited.apply_async((7,), headers={"tenant": "a"}, time_limit=30)

    row = Job.objects.get(pk=sent.id)
    assert row.gated and row.rate_limit == 5
    assert row.workflow["options"]["headers"] == {"tenant": "a"}
    run_pending()
    assert sent.get(timeout=1) == 7


def test_a_unique_task_is_still_refused_in_a_workflow() -> None:
    with pytest.raises(ValueError, match="unique key"):
        djqueue.chain(tasks.add.s(1, 2), tasks.unique_call.s()).apply_async()
    assert not Job.objects.exists()
