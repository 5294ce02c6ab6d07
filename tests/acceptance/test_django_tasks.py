"""A small app written with Django's own @task, run by runworker (Django 6.0+ only)."""

from __future__ import annotations

import pytest

pytest.importorskip("django.tasks", reason="Django's Tasks framework needs Django 6")

from django.tasks import TaskResultStatus

from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_django_tasks_run_on_a_worker_and_results_read_back(workers: Workers) -> None:
    sums = [tasks.django_add.enqueue(n, n) for n in range(20)]
    contextual = tasks.django_attempt.enqueue("ctx")
    failing = tasks.django_fail.enqueue()
    workers.start("-P", "threads", "-c", "4", "-Q", "default,django")

    def finished() -> bool:
        for result in [*sums, contextual, failing]:
            result.refresh()
        return all(result.is_finished for result in [*sums, contextual, failing])

    wait_until(finished, timeout=20, what="every django.tasks job to finish")
    assert [result.return_value for result in sums] == [2 * n for n in range(20)]
    assert all(result.status == TaskResultStatus.SUCCESSFUL for result in sums)
    assert contextual.return_value == {"label": "ctx", "attempt": 1, "id": contextual.id}
    assert failing.status == TaskResultStatus.FAILED
    assert failing.errors[0].exception_class is KeyError
    assert tasks.django_add.get_result(sums[3].id).return_value == 6


@pytest.mark.django_db(transaction=True)
def test_a_django_task_outside_tasks_py_is_found_by_its_path(workers: Workers) -> None:
    from tests.testapp import emails, framework_tasks

    welcome = emails.send_welcome.enqueue("ada@example.com")
    meaning = framework_tasks.calculate_meaning_of_life.enqueue()
    failing = framework_tasks.failing_task_value_error.enqueue()
    workers.start("-P", "prefork", "-c", "2")

    def finished() -> bool:
        for result in (welcome, meaning, failing):
            result.refresh()
        return all(result.is_finished for result in (welcome, meaning, failing))

    wait_until(finished, timeout=30, what="the django.tasks jobs outside tasks.py to finish")
    assert welcome.return_value == "welcome sent to ada@example.com"
    assert meaning.return_value == 42
    assert failing.errors[0].exception_class is ValueError
