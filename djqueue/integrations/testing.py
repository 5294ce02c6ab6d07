"""Helpers for testing code that sends tasks.

``run_pending()`` runs due jobs in the test's own process and connection, so it works
inside a ``TestCase`` transaction; ``enqueued()`` and ``assert_enqueued()`` look at
what was sent. The pytest plugin (:mod:`djqueue.integrations.pytest_plugin`) wraps them as fixtures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet

from djqueue.core import codec, conf, executor, registry, states
from djqueue.core.records import Outcome
from djqueue.db import broker
from djqueue.db.models import Job

WORKER_NAME = "djqueue-testing"


def run_pending(queues: Sequence[str] | None = None, limit: int = 10_000) -> list[Outcome]:
    """Run every due job (and retries that become due at once) here; return outcomes.

    Jobs scheduled for later (``countdown``/``eta``) are left alone.
    """
    chosen = list(queues) if queues else _all_queues()
    done: list[Outcome] = []
    while len(done) < limit and chosen:
        claimed = broker.claim(
            chosen, min(100, limit - len(done)), WORKER_NAME, 3600.0, limited=registry.limited()
        )
        if not claimed:
            break
        outcomes = [executor.execute(job) for job in claimed]
        broker.finish(outcomes)
        done.extend(outcomes)
    return done


def _all_queues() -> list[str]:
    return list(
        Job.objects.using(conf.database())
        .filter(state__in=states.WAITING)
        .values_list("queue", flat=True)
        .distinct()
    )


def enqueued(task: Any = None, state: str | None = states.PENDING) -> QuerySet[Job]:
    """Jobs of ``task`` (a task or its name) in ``state`` (None: any state)."""
    jobs = Job.objects.using(conf.database()).all()
    if task is not None:
        jobs = jobs.filter(task_name=getattr(task, "name", task))
    if state is not None:
        jobs = jobs.filter(state=state)
    return jobs.order_by("id")


def assert_enqueued(
    task: Any,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    count: int | None = None,
) -> list[Job]:
    """Assert that ``task`` was sent (with these arguments, ``count`` times if given)."""
    jobs = list(enqueued(task, state=None))
    name = getattr(task, "name", task)
    matching = [
        job
        for job in jobs
        if (args is None or job.args == codec.loads(codec.dumps(list(args))))
        and (kwargs is None or job.kwargs == codec.loads(codec.dumps(kwargs)))
    ]
    wanted = f" with args={args!r} kwargs={kwargs!r}" if args is not None or kwargs else ""
    if count is None and not matching:
        sent = [(job.args, job.kwargs) for job in jobs]
        raise AssertionError(f"{name} was not enqueued{wanted}; enqueued calls: {sent}")
    if count is not None and len(matching) != count:
        raise AssertionError(
            f"{name} was enqueued {len(matching)} time(s){wanted}, expected {count}"
        )
    return matching
