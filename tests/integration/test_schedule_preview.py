"""Periodic task and schedule pages: the next five runs, the outcome of recent runs, and
the preview view that computes the next runs from a form's values while it is edited."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from djqueue.beat import entries
from djqueue.core import ids, schedules, states
from djqueue.db.models import CrontabSchedule, IntervalSchedule, Job, PeriodicTask
from djqueue.ops import schedule_preview

pytestmark = pytest.mark.django_db

ADD = "tests.testapp.tasks.add"
CRONTAB_PREVIEW = "admin:djqueue_crontabschedule_preview"
TASK_PREVIEW = "admin:djqueue_periodictask_preview"


def crontab_values(**changes: str) -> dict[str, str]:
    values = {
        "minute": "0",
        "hour": "8",
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": "UTC",
    }
    values.update(changes)
    return values


def at(run: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(run["at"])


def test_a_crontab_preview_gives_the_next_five_runs(admin_client: Client) -> None:
    answer = admin_client.get(reverse(CRONTAB_PREVIEW), crontab_values(hour="8,20")).json()
    assert answer["error"] == ""
    runs = [at(run) for run in answer["runs"]]
    assert len(runs) == 5
    assert all(run.hour in (8, 20) and run.minute == 0 for run in runs)
    assert runs == sorted(runs) and runs[0] > timezone.now()
    assert answer["runs"][0]["text"].startswith(runs[0].strftime("%Y-%m-%d %H:%M:%S"))
    assert "(in " in answer["runs"][0]["text"]


def test_a_malformed_crontab_preview_shows_the_error_text(admin_client: Client) -> None:
    answer = admin_client.get(reverse(CRONTAB_PREVIEW), crontab_values(minute="61")).json()
    assert answer["runs"] == []
    assert "crontab minute='61' is invalid" in answer["error"]
    answer = admin_client.get(
        reverse(CRONTAB_PREVIEW), crontab_values(timezone="Mars/Olympus")
    ).json()
    assert "unknown time zone 'Mars/Olympus'" in answer["error"]
    assert not CrontabSchedule.objects.exists()  # a preview saves nothing


def test_an_interval_preview_counts_from_now(admin_client: Client) -> None:
    url = reverse("admin:djqueue_intervalschedule_preview")
    before = timezone.now()
    answer = admin_client.get(url, {"every": "15", "period": "minutes"}).json()
    runs = [at(run) for run in answer["runs"]]
    gaps = {later - earlier for earlier, later in itertools.pairwise(runs)}
    assert gaps == {datetime.timedelta(minutes=15)}
    assert before + datetime.timedelta(minutes=15) <= runs[0]
    answer = admin_client.get(url, {"every": "many", "period": "minutes"}).json()
    assert answer["runs"] == [] and "Enter a whole number" in answer["error"]


def test_a_task_preview_uses_the_schedule_chosen_in_the_form(admin_client: Client) -> None:
    crontab = CrontabSchedule.objects.create(minute="30", hour="6")
    values = {"name": "", "task": "", "crontab": crontab.pk, "enabled": "on"}
    answer = admin_client.get(reverse(TASK_PREVIEW), values).json()
    runs = [at(run) for run in answer["runs"]]
    assert len(runs) == 5 and {(run.hour, run.minute) for run in runs} == {(6, 30)}
    assert answer["schedule"] == crontab.schedule().describe()
    # None chosen: a hint, no error; two chosen: the form's own error.
    answer = admin_client.get(reverse(TASK_PREVIEW), {"name": ""}).json()
    assert answer["runs"] == [] and "Choose a schedule" in answer["note"]


def test_an_edited_task_counts_from_its_last_run(admin_client: Client) -> None:
    interval = IntervalSchedule.objects.create(every=1, period="hours")
    last = timezone.now().replace(microsecond=0) - datetime.timedelta(minutes=90)
    row = PeriodicTask.objects.create(name="hourly", task=ADD, interval=interval)
    # Slots fall on the hours counted from its creation.
    PeriodicTask.objects.filter(pk=row.pk).update(last_run_at=last, date_created=last)
    values = {"_object": row.pk, "interval": interval.pk, "enabled": "on", "name": "hourly"}
    answer = admin_client.get(reverse(TASK_PREVIEW), values).json()
    runs = [at(run) for run in answer["runs"]]
    assert runs[0] == last + datetime.timedelta(hours=1)
    assert answer["runs"][0]["overdue"] and "overdue" in answer["note"]
    values.pop("enabled")  # unticked
    answer = admin_client.get(reverse(TASK_PREVIEW), values).json()
    assert "Disabled" in answer["note"]


def test_the_task_page_shows_five_next_runs_and_the_preview_address(
    admin_client: Client,
) -> None:
    crontab = CrontabSchedule.objects.create(minute="*/10")
    row = PeriodicTask.objects.create(name="often", task=ADD, crontab=crontab)
    html = admin_client.get(reverse("admin:djqueue_periodictask_change", args=[row.pk])).content
    page = html.decode()
    expected = schedule_preview.upcoming(crontab.schedule(), entries.entry(row).after)
    assert len(expected) == 5
    for run in expected:
        assert run.strftime("%Y-%m-%d %H:%M:%S") in page
    assert f'data-preview-url="{reverse(TASK_PREVIEW)}?_object={row.pk}"' in page
    assert "djqueue/schedule_preview.js" in page


def test_recent_runs_show_each_jobs_outcome_with_a_link(admin_client: Client) -> None:
    interval = IntervalSchedule.objects.create(every=10, period="seconds")
    row = PeriodicTask.objects.create(name="adder", task=ADD, args=[1, 1], interval=interval)
    for _ in range(2):
        entry = entries.entry(PeriodicTask.objects.get(pk=row.pk))
        slot = entry.next_slot()
        assert slot is not None
        entries.fire(entry, schedules.Decision(slot, run=True), finish=False)
    first, second = Job.objects.order_by("eta", "id")
    Job.objects.filter(pk=first.pk).update(state=states.FAILURE, finished_at=timezone.now())
    page = admin_client.get(
        reverse("admin:djqueue_periodictask_change", args=[row.pk])
    ).content.decode()
    for job in (first, second):
        assert reverse("admin:djqueue_job_change", args=[job.id]) in page
        # Named by the end of its id, as every page names jobs (the start is the moment
        # it was sent, alike for both).
        assert f" {ids.short(job.id)}</a>" in page
    assert ">FAILURE</strong>" in page and ">PENDING</strong>" in page
    gone = second.id
    second.delete()
    listing = admin_client.get(reverse("admin:djqueue_periodictask_changelist")).content.decode()
    assert f"{ids.short(gone)}</a> (job pruned)" in listing  # the latest run's job is gone


def test_the_preview_needs_a_permission_to_edit() -> None:
    user = User.objects.create_user("reader", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_crontabschedule"))
    client = Client()
    client.force_login(user)
    response = client.get(reverse(CRONTAB_PREVIEW), crontab_values())
    assert response.status_code == 403
    assert "may not edit" in response.json()["error"]
    assert Client().get(reverse(CRONTAB_PREVIEW)).status_code == 302  # to the login
