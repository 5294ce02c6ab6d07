"""Tasks outside tasks.py reach workers through Celery's imports setting, and a Celery
project's settings module runs a worker as it is."""

from __future__ import annotations

from typing import Any

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import jobs


@pytest.mark.django_db(transaction=True)
def test_a_task_in_another_module_runs_on_a_worker_given_celery_imports(
    workers: Workers, settings: Any
) -> None:
    # The sender has the project's routes too: the job goes to the "shipping" queue.
    settings.CELERY_TASK_ROUTES = {"tests.testapp.jobs.*": {"queue": "shipping"}}
    shipped = jobs.ship.delay(7)
    unknown = jobs.ship.apply_async((8,), queue="plain")
    assert Job.objects.get(pk=shipped.id).queue == "shipping"
    workers.start("-P", "threads", "-Q", "shipping", "--settings=tests.settings_celery")
    # A worker without the setting has never imported the module: it cannot run the task.
    workers.start("-P", "threads", "-Q", "plain")
    assert shipped.get(timeout=20) == "order 7 shipped"

    def failed() -> bool:
        return Job.objects.get(pk=unknown.id).state == "FAILURE"

    wait_until(failed, timeout=20, what="the job sent to a worker without IMPORTS to fail")
    assert Job.objects.get(pk=unknown.id).error_type.endswith("NotRegistered")


@pytest.mark.django_db(transaction=True)
def test_a_worker_takes_its_defaults_from_celery_settings(workers: Workers) -> None:
    from djqueue.db.models import Worker
    from tests.testapp import tasks

    slow = tasks.sleep.apply_async((30,), queue="slow")
    worker = workers.start("-P", "prefork", "-Q", "slow", "--settings=tests.settings_celery")
    # CELERY_WORKER_CONCURRENCY = 3; CELERY_TASK_SOFT_TIME_LIMIT = 1 stops the task.
    assert Worker.objects.get(name__startswith=worker.name_prefix).concurrency == 3

    def ended() -> bool:
        return Job.objects.get(pk=slow.id).state == "FAILURE"

    wait_until(ended, timeout=20, what="the soft time limit to stop the sleeping task")
    assert Job.objects.get(pk=slow.id).error_type.endswith("SoftTimeLimitExceeded")
