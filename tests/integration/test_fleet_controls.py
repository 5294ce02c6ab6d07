"""The overview's fleet controls: every queue paused and resumed, every live worker's
pool resized or the worker shut down, each with its permission and a log entry."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from djqueue.db import broker
from djqueue.db.models import Control, Queue
from djqueue.ops import worker_control
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

FLEET = "admin:djqueue_fleet"


@pytest.fixture(autouse=True)
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers here are rows: nothing answers, so the page need not wait long.
    monkeypatch.setattr(worker_control, "REPLY_SECONDS", 0.2)


def _user(django_user_model: Any, *codenames: str) -> Client:
    user = django_user_model.objects.create_user("someone", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def _sent(before: set[Any], command: str) -> list[Control]:
    """Control rows of ``command`` made since ``before`` (the ids there were): they are
    written on a connection of their own, so rows of earlier tests outlive them."""
    return list(Control.objects.filter(command=command).exclude(id__in=before))


def _ids() -> set[Any]:
    return set(Control.objects.values_list("id", flat=True))


def _messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_pause_all_pauses_every_running_queue_and_resume_all_resumes_them(
    admin_client: Client,
) -> None:
    JobFactory(queue="mail")
    broker.register_worker("host.1", "host", 1, "threads", 2, ["default", "reports"])
    Queue.objects.create(name="limited", concurrency_limit=2)
    broker.set_paused("old", True)
    response = admin_client.post(reverse(FLEET), {"command": "pause_all"}, follow=True)
    assert _messages(response) == ["Paused 4 queue(s): default, limited, mail, reports."]
    assert set(Queue.objects.filter(paused=True).values_list("name", flat=True)) == {
        "default",
        "limited",
        "mail",
        "old",
        "reports",
    }
    assert Queue.objects.get(name="limited").concurrency_limit == 2
    logged = LogEntry.objects.filter(change_message__startswith="Paused 4 queue(s)")
    assert sorted(logged.values_list("object_id", flat=True)) == [
        "default",
        "limited",
        "mail",
        "reports",
    ]

    response = admin_client.post(reverse(FLEET), {"command": "resume_all"}, follow=True)
    assert _messages(response) == ["Resumed 5 queue(s): default, limited, mail, old, reports."]
    assert not Queue.objects.filter(paused=True).exists()
    again = admin_client.post(reverse(FLEET), {"command": "resume_all"}, follow=True)
    assert _messages(again) == ["No queue to resume."]


def test_worker_commands_go_to_every_live_worker_and_say_who_answered(
    admin_client: Client,
) -> None:
    broker.register_worker("host.1", "host", 1, "threads", 2, ["default"])
    broker.register_worker("host.2", "host", 2, "prefork", 4, ["mail"])
    broker.register_worker("host.3", "host", 3, "threads", 2, ["mail"])
    broker.worker_stopped("host.3", 0)
    before = _ids()
    response = admin_client.post(reverse(FLEET), {"command": "pool_grow", "n": "3"}, follow=True)
    [sent] = _sent(before, "pool_grow")
    assert sorted(sent.destination) == ["host.1", "host.2"]
    assert sent.arguments == {"n": 3}
    [said] = _messages(response)
    assert said.startswith("Grow every pool by 3: 0 of 2 live worker(s) answered; no answer")
    assert "host.1, host.2" in said
    assert LogEntry.objects.filter(change_message=said).count() == 2

    refused = admin_client.post(reverse(FLEET), {"command": "shutdown"}, follow=True)
    assert _messages(refused) == ["Tick the box to confirm the shutdown of every worker."]
    assert not _sent(before, "shutdown")
    shut = admin_client.post(reverse(FLEET), {"command": "shutdown", "confirm": "yes"}, follow=True)
    assert _messages(shut)[0].startswith("Warm shutdown of every live worker: 0 of 2")
    [shutdown] = _sent(before, "shutdown")
    assert sorted(shutdown.destination) == ["host.1", "host.2"]
    too_many = admin_client.post(reverse(FLEET), {"command": "pool_shrink", "n": "0"}, follow=True)
    assert "Give a number of slots from 1 to 64" in _messages(too_many)[0]


def test_without_a_live_worker_nothing_is_sent(admin_client: Client) -> None:
    before = _ids()
    response = admin_client.post(reverse(FLEET), {"command": "pool_grow", "n": "1"}, follow=True)
    assert _messages(response) == ["No live worker to send it to."]
    assert _ids() == before


def test_each_part_needs_its_permission(django_user_model: Any) -> None:
    JobFactory(queue="mail")
    broker.register_worker("host.1", "host", 1, "threads", 2, ["default"])
    before = _ids()
    pauser = _user(django_user_model, "view_job", "pause_queue")
    page = pauser.get(reverse("admin:djqueue_dashboard")).content.decode()
    assert 'id="djq-pause-all"' in page and 'id="djq-grow-all"' not in page
    assert pauser.post(reverse(FLEET), {"command": "pool_grow", "n": "1"}).status_code == 403
    assert _ids() == before
    assert pauser.post(reverse(FLEET), {"command": "pause_all"}).status_code == 302
    assert Queue.objects.get(name="mail").paused

    pauser.logout()
    operator = _user_named(django_user_model, "operator", "view_job", "control_worker")
    page = operator.get(reverse("admin:djqueue_dashboard")).content.decode()
    assert 'id="djq-grow-all"' in page and 'id="djq-pause-all"' not in page
    assert operator.post(reverse(FLEET), {"command": "resume_all"}).status_code == 403
    assert Queue.objects.get(name="mail").paused
    assert operator.get(reverse(FLEET)).status_code == 405


def _user_named(django_user_model: Any, name: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client
