"""The periodic task admin: validated forms, and actions with permissions and logs."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from djqueue.db.models import CrontabSchedule, IntervalSchedule, Job, PeriodicTask

pytestmark = pytest.mark.django_db

ADD = "tests.testapp.tasks.add"
CHANGELIST = "admin:djqueue_periodictask_changelist"


@pytest.fixture
def interval() -> IntervalSchedule:
    return IntervalSchedule.objects.create(every=10, period="seconds")


def form_data(interval: IntervalSchedule, **changes: Any) -> dict[str, Any]:
    data = {
        "name": "adder",
        "task": ADD,
        "enabled": "on",
        "interval": interval.pk,
        "args": "[1, 2]",
        "kwargs": "{}",
        "catch_up": "once",
        "queue": "",
    }
    data.update(changes)
    return data


def add(client: Client, data: dict[str, Any]) -> str:
    response = client.post(reverse("admin:djqueue_periodictask_add"), data)
    assert response.status_code == 200, "expected the form back with errors"
    assert not PeriodicTask.objects.exists()
    return response.content.decode()


def test_a_valid_task_is_saved(admin_client: Client, interval: IntervalSchedule) -> None:
    response = admin_client.post(reverse("admin:djqueue_periodictask_add"), form_data(interval))
    assert response.status_code == 302
    row = PeriodicTask.objects.get()
    assert (row.task, row.args, row.kwargs) == (ADD, [1, 2], {})


def test_an_unregistered_task_is_refused(admin_client: Client, interval: IntervalSchedule) -> None:
    page = add(admin_client, form_data(interval, task="os.system"))
    assert "Select a valid choice. os.system is not one of the available choices." in page


def test_invalid_json_and_options_say_what_is_wrong(
    admin_client: Client, interval: IntervalSchedule
) -> None:
    page = add(admin_client, form_data(interval, args="[1, 2"))
    assert "Not valid JSON: Expecting &#x27;,&#x27; delimiter at line 1, column 6." in page
    page = add(admin_client, form_data(interval, kwargs="[1]"))
    assert "kwargs must be a JSON object" in page
    page = add(admin_client, form_data(interval, priority="500"))
    assert "This task cannot be sent with these values: priority must be" in page


def test_a_task_needs_exactly_one_schedule(
    admin_client: Client, interval: IntervalSchedule
) -> None:
    crontab = CrontabSchedule.objects.create(minute="0", hour="8")
    page = add(admin_client, form_data(interval, crontab=crontab.pk))
    assert "Choose exactly one schedule" in page
    data = form_data(interval)
    data["interval"] = ""
    page = add(admin_client, data)
    assert "Choose exactly one schedule" in page


def test_a_malformed_crontab_is_refused(admin_client: Client) -> None:
    data = {
        "minute": "61",
        "hour": "*",
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": "UTC",
    }
    response = admin_client.post(reverse("admin:djqueue_crontabschedule_add"), data)
    assert response.status_code == 200
    assert "crontab minute=&#x27;61&#x27; is invalid" in response.content.decode()
    data.update(minute="0", timezone="Mars/Olympus")
    response = admin_client.post(reverse("admin:djqueue_crontabschedule_add"), data)
    assert "unknown time zone &#x27;Mars/Olympus&#x27;" in response.content.decode()
    assert not CrontabSchedule.objects.exists()


def test_the_list_shows_the_schedule_in_words_and_the_next_run(admin_client: Client) -> None:
    crontab = CrontabSchedule.objects.create(minute="0", hour="8", timezone="Europe/Paris")
    PeriodicTask.objects.create(name="morning", task=ADD, crontab=crontab)
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "At 08:00 every day, Europe/Paris" in page
    assert "morning" in page


def action(client: Client, name: str, rows: list[PeriodicTask]) -> Any:
    data = {"action": name, "_selected_action": [row.pk for row in rows]}
    return client.post(reverse(CHANGELIST), data)


def test_run_now_enqueues_at_once_and_is_logged(
    admin_client: Client, admin_user: User, interval: IntervalSchedule
) -> None:
    row = PeriodicTask.objects.create(name="adder", task=ADD, args=[2, 3], interval=interval)
    response = action(admin_client, "run_now", [row])
    assert response.status_code == 302
    job = Job.objects.get()
    assert (job.task_name, job.args) == (ADD, [2, 3])
    entry = LogEntry.objects.get()
    assert (entry.user_id, entry.object_id) == (admin_user.pk, str(row.pk))
    assert entry.get_change_message() == f"Ran now: sent job {job.id}."


def test_run_now_is_post_only(admin_client: Client, interval: IntervalSchedule) -> None:
    row = PeriodicTask.objects.create(name="adder", task=ADD, args=[2, 3], interval=interval)
    url = reverse(CHANGELIST) + f"?action=run_now&_selected_action={row.pk}"
    # A GET carrying an action's parameters runs nothing (actions are POSTed forms).
    assert admin_client.get(url).status_code in (200, 302)
    assert not Job.objects.exists()
    assert not LogEntry.objects.exists()


def test_run_now_needs_its_own_permission(interval: IntervalSchedule) -> None:
    row = PeriodicTask.objects.create(name="adder", task=ADD, args=[2, 3], interval=interval)
    user = User.objects.create_user("operator", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_periodictask", "change_periodictask"])
    )
    client = Client()
    client.force_login(user)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Run selected periodic tasks now" not in page
    action(client, "run_now", [row])
    assert not Job.objects.exists()

    user.user_permissions.add(Permission.objects.get(codename="run_periodictask"))
    user = User.objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_login(user)
    assert "Run selected periodic tasks now" in client.get(reverse(CHANGELIST)).content.decode()
    action(client, "run_now", [row])
    assert Job.objects.count() == 1


def test_enable_and_disable_actions_are_logged(
    admin_client: Client, interval: IntervalSchedule
) -> None:
    rows = [
        PeriodicTask.objects.create(name=f"t{n}", task=ADD, args=[1, 1], interval=interval)
        for n in range(2)
    ]
    action(admin_client, "disable", rows)
    assert not PeriodicTask.objects.filter(enabled=True).exists()
    assert LogEntry.objects.count() == 2
    action(admin_client, "enable", rows[:1])
    assert list(PeriodicTask.objects.filter(enabled=True)) == rows[:1]
    assert LogEntry.objects.count() == 3


def test_a_task_page_lists_its_recent_runs_with_links_to_their_jobs(
    admin_client: Client, interval: IntervalSchedule
) -> None:
    from djqueue.beat import entries
    from djqueue.core import schedules

    row = PeriodicTask.objects.create(
        name="adder", task=ADD, args=[1, 1], interval=interval, from_settings=True
    )
    slot = entries.entry(row).next_slot()
    assert slot is not None
    entries.fire(entries.entry(row), schedules.Decision(slot, run=True), finish=False)
    job = Job.objects.get()
    page = admin_client.get(reverse("admin:djqueue_periodictask_change", args=[row.pk]))
    html = page.content.decode()
    assert reverse("admin:djqueue_job_change", args=[job.id]) in html
    assert "runbeat puts the settings back when it starts" in html
