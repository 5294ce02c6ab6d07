"""factory-boy factories for queue rows in states tests need to start from."""

from __future__ import annotations

import datetime

import factory
from django.utils import timezone

from djqueue.core import codec, ids, states
from djqueue.db.models import Job


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    id = factory.LazyFunction(ids.new_id)
    task_name = "tests.testapp.tasks.add"
    queue = "default"
    priority = 0
    state = states.PENDING
    args = factory.LazyFunction(lambda: codec.loads(codec.dumps([1, 2])))
    kwargs = factory.LazyFunction(dict)
    eta = factory.LazyFunction(timezone.now)
    enqueued_at = factory.LazyFunction(timezone.now)
    max_attempts = 4


class StartedJobFactory(JobFactory):
    """A job a worker claimed; its lease has already run out unless told otherwise."""

    state = states.STARTED
    attempt = 1
    worker = "gone-worker"
    started_at = factory.LazyFunction(timezone.now)
    lease_expires_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(seconds=1))


class ReceivedJobFactory(StartedJobFactory):
    """A job a worker claimed and holds in its buffer, not started yet."""

    state = states.RECEIVED
    started_at = None
