"""Access details the matrix does not show: permissions one by one, the tokens, the
errors each refusal gives, and the roles command."""

from __future__ import annotations

import datetime
import io
import sys
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import djqueue
import djqueue.ops
from djqueue.core import states
from djqueue.db import broker
from djqueue.db.models import ClockedSchedule, IntervalSchedule, Job, PeriodicTask, Queue
from djqueue.ops import access
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

ADD = "tests.testapp.tasks.add"


def staff(*codenames: str, name: str = "") -> Client:
    name = name or f"staff-{User.objects.count()}"
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="djqueue", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


# Roles ----------------------------------------------------------------------------------


def test_roles_command_makes_both_groups_and_is_idempotent() -> None:
    out = io.StringIO()
    call_command("djqueue", "roles", stdout=out)
    assert "djqueue operator: made" in out.getvalue()
    operator = Group.objects.get(name="djqueue operator")
    operator.permissions.add(Permission.objects.get(codename="delete_job"))  # drifted by hand
    out = io.StringIO()
    call_command("djqueue", "roles", stdout=out)
    assert "djqueue operator: brought up to date" in out.getvalue()
    assert set(operator.permissions.values_list("codename", flat=True)) == set(access.OPERATOR)
    admin = Group.objects.get(name="djqueue admin")
    assert set(admin.permissions.values_list("codename", flat=True)) == set(access.ADMIN)


def test_roles_command_says_to_migrate_when_permissions_are_missing() -> None:
    Permission.objects.filter(codename="pause_queue").delete()
    with pytest.raises(CommandError, match=r"pause_queue .*run `manage.py migrate` first"):
        call_command("djqueue", "roles", stdout=io.StringIO())
    assert not Group.objects.exists()


# Dashboard ------------------------------------------------------------------------------


def test_dashboard_hides_workers_from_who_may_not_open_the_worker_pages() -> None:
    broker.register_worker("host.secret-worker", "host", 1, "threads", 4, ["default"])
    page = staff("view_job").get(reverse("admin:djqueue_dashboard")).content.decode()
    assert "host.secret-worker" not in page
    assert 'id="workers"' not in page
    assert 'id="queues"' in page


# Queues ---------------------------------------------------------------------------------


def test_adding_or_changing_a_queue_cannot_pause_it_without_pause_queue() -> None:
    client = staff("view_queue", "add_queue", "change_queue")
    client.post(reverse("admin:djqueue_queue_add"), {"name": "mail", "paused": "on"})
    assert not Queue.objects.filter(paused=True).exists()
    Queue.objects.update_or_create(name="sms", defaults={"paused": False})
    client.post(reverse("admin:djqueue_queue_change", args=["sms"]), {"paused": "on"})
    assert not Queue.objects.get(name="sms").paused
    page = client.get(reverse("admin:djqueue_queue_changelist")).content.decode()
    assert "Pause selected queues" not in page


def test_pause_queue_alone_pauses_by_action() -> None:
    Queue.objects.create(name="mail")
    client = staff("view_queue", "pause_queue")
    client.post(
        reverse("admin:djqueue_queue_changelist"),
        {"action": "pause", "_selected_action": ["mail"]},
    )
    assert Queue.objects.get(name="mail").paused


# Jobs -----------------------------------------------------------------------------------


def test_revoke_leaves_running_jobs_and_terminate_stops_them() -> None:
    running = JobFactory(state=states.STARTED, attempt=1, worker="w")
    url = reverse("admin:djqueue_job_changelist")
    client = staff("view_job", "revoke_job")
    client.post(
        url, {"action": "revoke_jobs", "_selected_action": [str(running.id)], "confirmed": "yes"}
    )
    assert Job.objects.get(pk=running.id).revoke_requested_at is None
    page = client.get(url).content.decode()
    assert "Terminate selected jobs" not in page
    client = staff("view_job", "terminate_job")
    client.post(
        url, {"action": "terminate_jobs", "_selected_action": [str(running.id)], "confirmed": "yes"}
    )
    assert Job.objects.get(pk=running.id).revoke_requested_at is not None


# Periodic tasks: edits that amount to "run now" -------------------------------------------


@pytest.fixture
def editor() -> Client:
    return staff(
        "view_periodictask",
        "change_periodictask",
        "view_clockedschedule",
        "change_clockedschedule",
        name="someone",
    )


def _task(**fields: Any) -> PeriodicTask:
    if not {"clocked", "interval"} & set(fields):
        fields["interval"] = IntervalSchedule.objects.create(every=1, period="hours")
    return PeriodicTask.objects.create(name="adder", task=ADD, args=[1, 2], **fields)


def _form(row: PeriodicTask, **changes: Any) -> dict[str, Any]:
    data = {
        "name": row.name,
        "task": row.task,
        "enabled": "on" if row.enabled else "",
        "description": row.description,
        "interval": row.interval_id or "",
        "clocked": row.clocked_id or "",
        "args": "[1, 2]",
        "kwargs": "{}",
        "catch_up": row.catch_up,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def _past() -> ClockedSchedule:
    return ClockedSchedule.objects.create(clocked_time=timezone.now() - datetime.timedelta(hours=1))


def test_pointing_a_task_at_a_past_time_needs_run_now(editor: Client) -> None:
    row, past = _task(), _past()
    url = reverse("admin:djqueue_periodictask_change", args=[row.pk])
    response = editor.post(url, _form(row, interval="", clocked=past.pk))
    assert response.status_code == 200  # the form again, with the error
    assert "run at once" in response.content.decode()
    assert "djqueue.run_periodictask" in response.content.decode()
    assert PeriodicTask.objects.get(pk=row.pk).interval_id == row.interval_id


def test_editing_an_overdue_task_is_allowed(editor: Client) -> None:
    row = _task(clocked=_past())  # already due: it runs whatever the edit
    url = reverse("admin:djqueue_periodictask_change", args=[row.pk])
    editor.post(url, _form(row, description="still overdue"))
    assert PeriodicTask.objects.get(pk=row.pk).description == "still overdue"


def test_moving_a_clocked_schedule_into_the_past_needs_run_now(editor: Client) -> None:
    future = ClockedSchedule.objects.create(
        clocked_time=timezone.now() + datetime.timedelta(days=1)
    )
    _task(clocked=future)
    past = timezone.now() - datetime.timedelta(hours=1)
    response = editor.post(
        reverse("admin:djqueue_clockedschedule_change", args=[future.pk]),
        {"clocked_time_0": past.strftime("%Y-%m-%d"), "clocked_time_1": past.strftime("%H:%M:%S")},
    )
    [error] = response.context["adminform"].form.non_field_errors()
    assert "would make 'adder' run at once" in error
    assert ClockedSchedule.objects.get(pk=future.pk).clocked_time > timezone.now()


def test_enabling_an_overdue_task_needs_run_now(editor: Client) -> None:
    row = _task(clocked=_past(), enabled=False)
    url = reverse("admin:djqueue_periodictask_changelist")
    response = editor.post(url, {"action": "enable", "_selected_action": [row.pk]}, follow=True)
    assert "run at once" in response.content.decode()
    assert not PeriodicTask.objects.get(pk=row.pk).enabled


def test_enabling_an_overdue_task_from_the_list_needs_run_now(
    editor: Client, monkeypatch: Any
) -> None:
    from djqueue.ops.periodic_admin import PeriodicTaskAdmin

    row = _task(clocked=_past(), enabled=False)
    response = editor.post(
        reverse("admin:djqueue_periodictask_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(row.pk),
            "form-0-enabled": "on",
            "_save": "Save",
        },
    )
    assert PeriodicTaskAdmin.list_editable == ("enabled",)
    assert response.status_code == 200
    assert "run at once" in response.content.decode()
    assert not PeriodicTask.objects.get(pk=row.pk).enabled


def test_run_now_permission_allows_those_edits(editor: Client) -> None:
    user = User.objects.get(username="someone")
    user.user_permissions.add(Permission.objects.get(codename="run_periodictask"))
    editor.force_login(User.objects.get(pk=user.pk))
    row, past = _task(), _past()
    url = reverse("admin:djqueue_periodictask_change", args=[row.pk])
    editor.post(url, _form(row, interval="", clocked=past.pk))
    assert PeriodicTask.objects.get(pk=row.pk).clocked_id == past.pk


# The job status view ----------------------------------------------------------------------


def test_status_token_opens_its_own_job_only(client: Client) -> None:
    mine, other = JobFactory(), JobFactory()
    token = djqueue.status_token(djqueue.AsyncResult(str(mine.id)))
    assert client.get(f"/tasks/jobs/{mine.id}/", {"token": token}).status_code == 200
    refused = client.get(f"/tasks/jobs/{other.id}/", {"token": token})
    assert refused.status_code == 403
    assert "djqueue.status_token" in refused.json()["error"]


def test_status_refusal_does_not_tell_whether_the_job_exists(client: Client) -> None:
    import uuid

    unknown = client.get(f"/tasks/jobs/{uuid.uuid4()}/")
    known = client.get(f"/tasks/jobs/{JobFactory().id}/")
    assert unknown.status_code == known.status_code == 403
    assert unknown.json()["error"] == known.json()["error"]


def test_status_token_survives_key_rotation(client: Client, settings: Any) -> None:
    job = JobFactory()
    token = djqueue.status_token(job.id)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-for-tests"
    assert client.get(f"/tasks/jobs/{job.id}/", {"token": token}).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(f"/tasks/jobs/{job.id}/", {"token": token}).status_code == 403


def test_status_public_by_setting(client: Client, settings: Any) -> None:
    settings.DJQUEUE = {**settings.DJQUEUE, "JOB_STATUS_PUBLIC": True}
    assert client.get(f"/tasks/jobs/{JobFactory().id}/").status_code == 200


def test_status_token_rejects_what_is_not_a_job_id() -> None:
    with pytest.raises(ValueError, match="is not a UUID"):
        djqueue.status_token("not-an-id")


# The metrics view ------------------------------------------------------------------------


def test_metrics_refusals_say_what_is_needed(client: Client, settings: Any) -> None:
    anonymous = client.get("/tasks/metrics/")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert "METRICS_TOKEN" in anonymous.content.decode()
    assert staff().get("/tasks/metrics/").status_code == 403
    # No token configured: no bearer token is right.
    wrong = client.get("/tasks/metrics/", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403
    settings.DJQUEUE = {**settings.DJQUEUE, "METRICS_TOKEN": "right"}
    wrong = client.get("/tasks/metrics/", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403
    right = client.get("/tasks/metrics/", headers={"Authorization": "Bearer right"})
    assert right.status_code == 200
    assert staff("view_metrics").get("/tasks/metrics/").status_code == 200


def test_metrics_public_by_setting(client: Client, settings: Any) -> None:
    settings.DJQUEUE = {**settings.DJQUEUE, "METRICS_PUBLIC": True}
    assert client.get("/tasks/metrics/").status_code == 200


def test_metrics_without_the_client_library_say_how_to_install_it(
    admin_client: Client, monkeypatch: Any
) -> None:
    # As if prometheus_client were not installed: its import fails.
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "djqueue.ops.metrics", raising=False)
    monkeypatch.delattr(djqueue.ops, "metrics", raising=False)
    response = admin_client.get("/tasks/metrics/")
    assert response.status_code == 501
    assert "pip install 'djqueue[prometheus]'" in response.content.decode()
