"""A worker's admin page against a real worker: it reads as the worker is (pool, queues,
children and their memory, jobs running now), and its controls reach the worker through
the database: grow and shrink the pool, set the log level, warm shutdown."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _row(worker: Any) -> Worker:
    return Worker.objects.get(name__startswith=worker.name_prefix, stopped_at__isnull=True)


def _send(client: Client, row: Worker, **data: str) -> str:
    url = reverse("admin:djqueue_worker_control", args=[row.pk])
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_page_grows_the_pool_sets_the_log_level_and_stops_the_worker(
    workers: Workers, admin_client: Client
) -> None:
    worker = workers.start("-P", "threads", "-c", "2", "-Q", "default,mail")
    row = _row(worker)
    page = admin_client.get(reverse("admin:djqueue_worker_change", args=[row.pk])).content.decode()
    assert 'id="djq-worker-control"' in page and 'id="djq-grow"' in page
    assert '"default"' not in page  # queues as links, not as JSON
    assert ">mail</a>" in page

    said = _send(admin_client, row, command="pool_grow", n="3")
    assert "answered &#x27;pool will grow&#x27; (pool size 5)" in said
    wait_until(lambda: _row(worker).concurrency == 5, 20, "the row to show the new size")
    said = _send(admin_client, row, command="pool_shrink", n="4")
    assert "(pool size 1)" in said
    wait_until(lambda: _row(worker).concurrency == 1, 20, "the row to show the new size")

    said = _send(admin_client, row, command="log_level", level="debug")
    assert "log level set to debug" in said
    wait_until(lambda: "Log level set to debug" in worker.log(), 20, "the worker's log")

    messages = list(
        LogEntry.objects.filter(object_id=str(row.pk)).values_list("change_message", flat=True)
    )
    assert len(messages) == 3 and any("Grow the pool by 3" in m for m in messages)

    running = tasks.sleep.delay(1.5)
    wait_until(lambda: Job.objects.get(pk=running.id).state == "STARTED", 20, "the start")
    said = _send(admin_client, row, command="shutdown")
    assert "Tick the box to confirm the shutdown." in said
    said = _send(admin_client, row, command="shutdown", confirm="yes")
    assert "answered &#x27;shutting down&#x27;" in said
    assert worker.wait_exit(timeout=30) == 0
    assert Job.objects.get(pk=running.id).state == "SUCCESS"  # warm: it was let finish


@pytest.mark.django_db(transaction=True)
def test_a_prefork_workers_page_lists_its_children_once_with_their_memory(
    workers: Workers, admin_client: Client
) -> None:
    worker = workers.start("-P", "prefork", "-c", "2")
    running = tasks.sleep.delay(3)
    wait_until(lambda: any(child.get("job") for child in _row(worker).children), 20, "a busy child")
    row = _row(worker)
    page = admin_client.get(reverse("admin:djqueue_worker_change", args=[row.pk])).content.decode()
    for child in row.children:
        assert page.count(f"<td>{child['pid']}</td>") == 1
        assert isinstance(child["memory_kb"], int) and child["memory_kb"] > 0
    assert " MB</td>" in page
    job_link = reverse("admin:djqueue_job_change", args=[running.id])
    # Linked twice: from the jobs it runs now and from the child that runs it.
    assert page.count(f'href="{job_link}"') == 2
    # A solo worker has nothing to grow.
    solo = workers.start("-P", "solo")
    page = admin_client.get(
        reverse("admin:djqueue_worker_change", args=[_row(solo).pk])
    ).content.decode()
    assert "cannot change its size" in page and 'id="djq-grow"' not in page
