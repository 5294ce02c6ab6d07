"""The queues page: every queue with its depth, oldest due job, throughput and live
workers, flagged when paused or unserved; pause and resume from its buttons, with the
permission and a LogEntry."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from djqueue.core import states
from djqueue.db import broker
from djqueue.db.models import JobMinute, Queue
from djqueue.ops import queue_page
from tests.factories import JobFactory, StartedJobFactory

pytestmark = pytest.mark.django_db

PAGE = "admin:djqueue_queue_changelist"
COMMAND = "admin:djqueue_queue_command"


def _minute(queue: str, outcome: str, count: int) -> JobMinute:
    minute = timezone.now().replace(second=0, microsecond=0) - datetime.timedelta(minutes=5)
    return JobMinute.objects.create(
        minute=minute,
        queue=queue,
        task_name="tests.testapp.tasks.add",
        outcome=outcome,
        count=count,
        runtime_sum=0.0,
        runtime_buckets=[0] * 22,
        wait_sum=0.0,
        wait_buckets=[0] * 22,
    )


@pytest.fixture
def fleet() -> None:
    past = timezone.now() - datetime.timedelta(minutes=7)
    JobFactory.create_batch(3, queue="mail", eta=past)
    JobFactory(queue="mail", eta=timezone.now() + datetime.timedelta(hours=1))
    StartedJobFactory(queue="mail", worker="web1.1.a")
    JobFactory.create_batch(2, queue="nobody")
    broker.register_worker("web1.1.a", "web1", 1, "threads", 4, ["mail", "idle"])
    broker.set_paused("reports", True)
    _minute("mail", states.SUCCESS, 50)
    _minute("mail", states.FAILURE, 10)
    _minute("mail", states.RETRY, 7)  # a retry is not an end


def test_rows_give_each_queues_depth_throughput_and_workers(fleet: None) -> None:
    rows = {row.name: row for row in queue_page.rows()}
    assert set(rows) == {"mail", "nobody", "reports", "idle"}
    mail = rows["mail"]
    assert (mail.waiting, mail.scheduled, mail.running, mail.ended, mail.failed) == (
        3,
        1,
        1,
        60,
        10,
    )
    assert mail.oldest is not None and mail.oldest >= datetime.timedelta(minutes=7)
    assert mail.workers == ["web1.1.a"] and mail.per_minute == 1.0
    assert rows["nobody"].unserved and not rows["mail"].unserved
    assert rows["reports"].paused and rows["reports"].known and not rows["reports"].unserved
    assert rows["idle"].workers == ["web1.1.a"] and rows["idle"].waiting == 0


def test_the_page_shows_and_flags_them_with_links(admin_client: Client, fleet: None) -> None:
    page = admin_client.get(reverse(PAGE)).content.decode()
    assert 'data-queue="nobody"' in page and "no live worker" in page
    assert 'class="djq-paused">paused' in page
    assert "7 min" in page  # the oldest due job of mail
    assert "queue__exact=mail" in page and "state__exact=FAILURE" in page
    assert 'value="resume"' in page and 'value="pause"' in page


def test_buttons_pause_and_resume_with_a_log_entry(admin_client: Client, admin_user: User) -> None:
    response = admin_client.post(reverse(COMMAND), {"queue": "mail", "command": "pause"})
    assert response.status_code == 302
    assert Queue.objects.get(name="mail").paused
    admin_client.post(reverse(COMMAND), {"queue": "mail", "command": "resume"})
    assert not Queue.objects.get(name="mail").paused
    entries = LogEntry.objects.filter(object_id="mail", user=admin_user).order_by("id")
    assert [entry.get_change_message() for entry in entries] == ["Paused", "Resumed"]
    bad = admin_client.post(reverse(COMMAND), {"queue": "", "command": "pause"}, follow=True)
    assert "Choose a queue" in bad.content.decode()
    assert admin_client.get(reverse(COMMAND)).status_code == 405


def test_an_operator_sees_the_page_without_buttons_and_cannot_pause(fleet: None) -> None:
    user = User.objects.create_user("operator", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_queue"))
    client = Client()
    client.force_login(user)
    page = client.get(reverse(PAGE)).content.decode()
    assert 'data-queue="mail"' in page and 'value="pause"' not in page
    response = client.post(reverse(COMMAND), {"queue": "mail", "command": "pause"})
    assert response.status_code == 403
    assert not Queue.objects.filter(name="mail").exists()


def test_limits_are_set_from_the_queue_form_and_shown_on_the_page(
    admin_client: Client, admin_user: User
) -> None:
    JobFactory(queue="mail")
    page = admin_client.get(reverse(PAGE)).content.decode()
    assert f"{reverse('admin:djqueue_queue_add')}?name=mail" in page
    form = admin_client.get(reverse("admin:djqueue_queue_add"), {"name": "mail"})
    assert 'value="mail"' in form.content.decode()
    data = {"name": "mail", "concurrency_limit": "2", "rate": "100/m"}
    response = admin_client.post(reverse("admin:djqueue_queue_add"), data)
    assert response.status_code == 302
    row = Queue.objects.get(name="mail")
    assert (row.paused, row.concurrency_limit, row.rate_limit, row.rate_period) == (
        False,
        2,
        100,
        60.0,
    )
    assert LogEntry.objects.filter(object_id="mail", user=admin_user).exists()
    assert "2 at once, 100/m" in admin_client.get(reverse(PAGE)).content.decode()

    change = reverse("admin:djqueue_queue_change", args=["mail"])
    bad = admin_client.post(change, {"concurrency_limit": "", "rate": "100/x"})
    assert "has an unknown unit" in bad.content.decode()
    admin_client.post(change, {"concurrency_limit": "", "rate": ""})
    row = Queue.objects.get(name="mail")
    assert (row.concurrency_limit, row.rate_limit) == (None, None)


def test_limits_need_the_change_permission() -> None:
    Queue.objects.create(name="mail")
    user = User.objects.create_user("pauser", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_queue", "pause_queue"])
    )
    client = Client()
    client.force_login(user)
    page = client.get(reverse("admin:djqueue_queue_change", args=["mail"])).content.decode()
    assert 'name="rate"' not in page and 'name="concurrency_limit"' not in page
    assert "djq-edit-limits" not in client.get(reverse(PAGE)).content.decode()
    client.post(
        reverse("admin:djqueue_queue_change", args=["mail"]),
        {"paused": "on", "concurrency_limit": "1", "rate": "1/s"},
    )
    assert Queue.objects.get(name="mail").concurrency_limit is None


def test_a_queue_whose_name_holds_the_admins_escapes_opens_its_own_form(
    admin_client: Client,
) -> None:
    # The admin reads "_2F" in a link as "/": a name holding it must be escaped first.
    broker.set_queue_limits("bulk_2Fsync", 3, None)
    page = admin_client.get(reverse("admin:djqueue_queue_changelist")).content.decode()
    link = reverse("admin:djqueue_queue_change", args=["bulk_5F2Fsync"])
    assert f'href="{link}"' in page
    form = admin_client.get(link)
    assert form.status_code == 200
    assert form.context["original"].name == "bulk_2Fsync"
