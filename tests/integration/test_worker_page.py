"""A worker's admin page from its row: readable fields, children once, jobs linked, and
controls shown only to who may use them. tests/acceptance/test_worker_page.py runs the
controls against a real worker."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from djqueue import control
from djqueue.db.models import Control, Worker
from djqueue.ops import worker_control
from tests.factories import StartedJobFactory

pytestmark = pytest.mark.django_db


def _worker(alive: bool = True, **fields: Any) -> Worker:
    beat = timezone.now() - datetime.timedelta(seconds=0 if alive else 3600)
    values: dict[str, Any] = {
        "name": "web1.4242.3f9a1c",
        "hostname": "web1",
        "pid": 4242,
        "pool": "prefork",
        "concurrency": 2,
        "queues": ["default", "mail"],
        "started_at": beat - datetime.timedelta(hours=2, minutes=5),
        "last_heartbeat": beat,
    }
    values.update(fields)
    return Worker.objects.create(**values)


def _page(client: Client, worker: Worker) -> str:
    response = client.get(reverse("admin:djqueue_worker_change", args=[worker.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_lists_children_once_queues_as_links_and_held_jobs(
    admin_client: Client,
) -> None:
    job = StartedJobFactory(worker="web1.4242.3f9a1c")
    worker = _worker(
        children=[
            {"pid": 5001, "job": str(job.id), "memory_kb": 51_200},
            {"pid": 5002, "job": None, "memory_kb": None},
        ]
    )
    page = _page(admin_client, worker)
    assert page.count("<td>5001</td>") == 1 and page.count("<td>5002</td>") == 1
    assert "<td>50.0 MB</td>" in page and "<td>idle</td>" in page
    assert "[&quot;default&quot;" not in page and '"default", "mail"' not in page
    assert ">default</a>, <a" in page
    link = reverse("admin:djqueue_job_change", args=[job.id])
    assert page.count(f'href="{link}"') == 2  # running now, and its child
    assert "2 h 5 min" in page  # uptime
    assert 'id="djq-worker-control"' in page and 'id="djq-grow"' in page
    listing = admin_client.get(reverse("admin:djqueue_worker_changelist")).content.decode()
    assert "2 (1 busy)" in listing


def test_controls_need_the_permission_and_a_live_worker(admin_client: Client) -> None:
    worker = _worker()
    operator = User.objects.create_user("operator", password="x", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="view_worker"))
    client = Client()
    client.force_login(operator)
    page = _page(client, worker)
    assert "Grow" not in page and 'id="djq-worker-control"' not in page
    url = reverse("admin:djqueue_worker_control", args=[worker.pk])
    assert client.post(url, {"command": "shutdown", "confirm": "yes"}).status_code == 403
    assert not Control.objects.filter(destination=[worker.name]).exists()

    gone = _worker(alive=False, name="web2.1.a")
    page = _page(admin_client, gone)
    assert "not alive" in page and 'id="djq-grow"' not in page
    assert admin_client.get(url).status_code == 405  # commands are POSTs


def test_bad_values_are_refused_with_the_reason_and_nothing_is_sent() -> None:
    worker = _worker()
    for data, reason in [
        ({"command": "explode"}, "Unknown command 'explode'"),
        ({"command": "pool_grow", "n": "0"}, "from 1 to 64"),
        ({"command": "pool_grow", "n": "lots"}, "from 1 to 64"),
        ({"command": "log_level", "level": "loud"}, "Choose a log level"),
        ({"command": "shutdown"}, "Tick the box"),
    ]:
        with pytest.raises(worker_control.Refused, match=reason):
            worker_control.send(worker, data)
    assert not Control.objects.filter(destination=[worker.name]).exists()
    with pytest.raises(ValueError, match="level must be one of debug, info"):
        control.log_level("loud")


def test_a_command_with_no_answer_says_so_and_is_logged(
    admin_client: Client, admin_user: User
) -> None:
    from django.contrib.admin.models import LogEntry

    worker = _worker(alive=False, name="web3.1.b")
    url = reverse("admin:djqueue_worker_control", args=[worker.pk])
    response = admin_client.post(url, {"command": "log_level", "level": "debug"}, follow=True)
    assert "did not answer within 3 s" in response.content.decode()
    # Only this worker's: tests with real workers before this one may leave other rows.
    sent = Control.objects.get(destination=["web3.1.b"])
    assert (sent.command, sent.arguments, sent.destination) == (
        "log_level",
        {"level": "debug"},
        ["web3.1.b"],
    )
    entry = LogEntry.objects.get()
    assert (entry.user_id, entry.object_id) == (admin_user.pk, str(worker.pk))
    assert entry.get_change_message().startswith("Set the log level to debug: sent;")
