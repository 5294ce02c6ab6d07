"""The permission matrix of docs/monitoring.md, checked cell by cell.

The table is read from the docs: each row names a page or an action, each column a role
(made by ``manage.py djqueue roles``), and each cell says what that role gets. A probe
per row does what the row says through Django's test client against the real database
and reports what happened; every cell must match.
"""

from __future__ import annotations

import datetime
import io
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import djqueue
from djqueue.core import states
from djqueue.db.models import (
    ClockedSchedule,
    IntervalSchedule,
    Job,
    PeriodicTask,
    Queue,
)
from tests.factories import JobFactory, StartedJobFactory

pytestmark = pytest.mark.django_db

DOCS = pathlib.Path(__file__).parents[2] / "docs" / "monitoring.md"
HEADING = "| page or action |"
ROLES = ["anonymous", "staff, no permission", "operator", "admin", "superuser"]
ADD = "tests.testapp.tasks.add"
TOKEN = "scrape-token-for-tests"


def documented() -> dict[str, dict[str, str]]:
    """The docs' table: row label -> role -> cell."""
    lines = DOCS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADING))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    assert header[1:] == ROLES
    table = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        table[cells[0]] = dict(zip(ROLES, cells[1:], strict=True))
    return table


def client_for(role: str) -> Client:
    client = Client()
    if role == "anonymous":
        return client
    if role == "superuser":
        user = User.objects.create_superuser("root", "root@example.com", "pw")
    else:
        user = User.objects.create_user(role.split(",")[0], password="pw", is_staff=True)
        if role in ("operator", "admin"):
            user.groups.add(Group.objects.get(name=f"djqueue {role}"))
    client.force_login(user)
    return client


def page(response: Any) -> str:
    """What a GET of a console page gave: yes, no (403) or login."""
    if response.status_code == 302 and "/login/" in response["Location"]:
        return "login"
    if response.status_code == 403:
        return "no"
    assert response.status_code == 200, response
    return "yes"


def done(response: Any, happened: bool) -> str:
    """What a POSTed action gave: yes when it took effect, login, or no."""
    if response.status_code == 302 and "/login/" in response["Location"]:
        assert not happened
        return "login"
    return "yes" if happened else "no"


def pages(*names: str, args: Callable[[], list[Any]] | None = None) -> Callable[[Client], str]:
    def probe(client: Client) -> str:
        seen = {
            page(
                client.get(
                    reverse(name, args=args() if args and name.endswith("_change") else None)
                )
            )
            for name in names
        }
        assert len(seen) == 1, f"{names} disagree: {seen}"
        return seen.pop()

    return probe


def action(url_name: str, name: str, ids: list[Any]) -> Any:
    def post(client: Client) -> Any:
        return client.post(
            reverse(url_name),
            # "confirmed": past the job list's confirmation page (the queue list has none).
            {"action": name, "_selected_action": [str(i) for i in ids], "confirmed": "yes"},
        )

    return post


def job_action(
    name: str, before: str, factory: Any = JobFactory, button: str | None = None
) -> Callable[[Client], str]:
    """The list's action and, when given, the job page's button: both must agree."""

    def changed(job: Job) -> bool:
        row = Job.objects.filter(pk=job.id).first()
        return row is None or row.state != before or row.revoke_requested_at is not None

    def probe(client: Client) -> str:
        job = factory(state=before)
        response = action("admin:djqueue_job_changelist", name, [job.id])(client)
        by_action = done(response, changed(job))
        if button is None:
            return by_action
        job = factory(state=before)
        pressed = client.post(reverse(f"admin:djqueue_job_{button}", args=[job.id]))
        by_button = done(pressed, changed(job))
        assert by_action == by_button, (by_action, by_button)
        return by_action

    return probe


def run_again(client: Client) -> str:
    job = JobFactory(task_name=ADD, state=states.SUCCESS)
    response = client.post(reverse("admin:djqueue_job_run_again", args=[job.id]))
    return done(response, Job.objects.count() == 2)


def pause_queues(client: Client) -> str:
    """Pausing by the action, resuming by the form, pausing by adding a row: all agree."""
    Queue.objects.create(name="mail", paused=False)
    paused = action("admin:djqueue_queue_changelist", "pause", ["mail"])(client)
    by_action = done(paused, Queue.objects.get(name="mail").paused)
    Queue.objects.filter(name="mail").update(paused=True)
    resumed = client.post(reverse("admin:djqueue_queue_change", args=["mail"]), {"paused": ""})
    by_form = done(resumed, not Queue.objects.get(name="mail").paused)
    added = client.post(reverse("admin:djqueue_queue_add"), {"name": "sms", "paused": "on"})
    by_adding = done(added, Queue.objects.filter(name="sms", paused=True).exists())
    assert by_action == by_form == by_adding, (by_action, by_form, by_adding)
    return by_action


def _task(**fields: Any) -> PeriodicTask:
    interval = IntervalSchedule.objects.create(every=1, period="hours")
    return PeriodicTask.objects.create(
        name="adder", task=ADD, args=[1, 2], interval=interval, **fields
    )


def _form(row: PeriodicTask, **changes: Any) -> dict[str, Any]:
    data = {
        "name": row.name,
        "task": row.task,
        "enabled": "on",
        "description": row.description,
        "interval": row.interval_id or "",
        "crontab": "",
        "solar": "",
        "clocked": row.clocked_id or "",
        "start_time_0": "",
        "start_time_1": "",
        "args": "[1, 2]",
        "kwargs": "{}",
        "queue": "",
        "priority": "",
        "expires_0": "",
        "expires_1": "",
        "expire_seconds": "",
        "catch_up": row.catch_up,
    }
    data.update(changes)
    return data


def edit_periodic(client: Client) -> str:
    row = _task()
    url = reverse("admin:djqueue_periodictask_change", args=[row.pk])
    response = client.post(url, _form(row, description="edited"))
    return done(response, PeriodicTask.objects.get(pk=row.pk).description == "edited")


def run_periodic_now(client: Client) -> str:
    row = _task()
    response = action("admin:djqueue_periodictask_changelist", "run_now", [row.pk])(client)
    return done(response, Job.objects.filter(task_name=ADD).exists())


def point_at_past(client: Client) -> str:
    row = _task()
    past = ClockedSchedule.objects.create(clocked_time=timezone.now() - datetime.timedelta(hours=1))
    url = reverse("admin:djqueue_periodictask_change", args=[row.pk])
    response = client.post(url, _form(row, interval="", clocked=past.pk))
    return done(response, PeriodicTask.objects.get(pk=row.pk).clocked_id == past.pk)


def dashboard_workers(client: Client) -> str:
    from djqueue.db import broker

    broker.register_worker("host.1", "host", 1, "threads", 4, ["default"])
    response = client.get(reverse("admin:djqueue_dashboard"))
    seen = page(response)
    if seen != "yes":
        return seen
    return "yes" if 'id="workers"' in response.content.decode() else "no"


def control_worker(client: Client) -> str:
    """Grow a worker's pool from its page: the command row is what "happened" means (the
    worker, played by a row that stopped beating, answers nothing)."""
    from djqueue.db import broker
    from djqueue.db.models import Control, Worker

    broker.register_worker("host.3", "host", 3, "threads", 2, ["default"])
    stale = timezone.now() - datetime.timedelta(hours=1)
    Worker.objects.filter(name="host.3").update(last_heartbeat=stale)
    worker = Worker.objects.get(name="host.3")
    url = reverse("admin:djqueue_worker_control", args=[worker.pk])
    response = client.post(url, {"command": "pool_grow", "n": "2"})
    sent = Control.objects.filter(command="pool_grow", destination=["host.3"]).exists()
    if response.status_code == 403:
        assert not sent
        return "no"
    return done(response, sent)


def pause_every_queue(client: Client) -> str:
    """The dashboard's Pause all, then its Resume all: both agree."""
    JobFactory(queue="mail")
    response = client.post(reverse("admin:djqueue_fleet"), {"command": "pause_all"})
    paused = done(response, Queue.objects.filter(name="mail", paused=True).exists())
    Queue.objects.update_or_create(name="mail", defaults={"paused": True})
    response = client.post(reverse("admin:djqueue_fleet"), {"command": "resume_all"})
    resumed = done(response, not Queue.objects.get(name="mail").paused)
    assert paused == resumed, (paused, resumed)
    return paused


def control_every_worker(client: Client) -> str:
    """Grow every live worker's pool from the dashboard: the command row is what
    "happened" means (the live worker is a row: nothing answers, so the wait is cut)."""
    from unittest import mock

    from djqueue.db import broker
    from djqueue.db.models import Control
    from djqueue.ops import worker_control

    broker.register_worker("host.4", "host", 4, "threads", 2, ["default"])
    # Control rows are written on a connection of their own: earlier tests' rows remain.
    before = list(Control.objects.values_list("id", flat=True))
    with mock.patch.object(worker_control, "REPLY_SECONDS", 0.1):
        response = client.post(reverse("admin:djqueue_fleet"), {"command": "pool_grow", "n": "1"})
    sent = (
        Control.objects.filter(command="pool_grow", destination=["host.4"])
        .exclude(id__in=before)
        .exists()
    )
    if response.status_code == 403:
        assert not sent
        return "no"
    return done(response, sent)


def dashboard_fleet(client: Client) -> str:
    response = client.get(reverse("admin:djqueue_dashboard"))
    seen = page(response)
    if seen != "yes":
        return seen
    return "yes" if 'id="djq-fleet"' in response.content.decode() else "no"


def limit_queue(client: Client) -> str:
    Queue.objects.create(name="mail")
    url = reverse("admin:djqueue_queue_change", args=["mail"])
    response = client.post(url, {"concurrency_limit": "3", "rate": "10/s"})
    return done(response, Queue.objects.get(name="mail").concurrency_limit == 3)


def preview_schedule(client: Client) -> str:
    url = reverse("admin:djqueue_crontabschedule_preview")
    response = client.get(url, {"minute": "0", "hour": "8", "timezone": "UTC"})
    return page(response)


def status(with_token: bool) -> Callable[[Client], str]:
    def probe(client: Client) -> str:
        job = JobFactory(state=states.SUCCESS, result=42)
        query = {"token": djqueue.status_token(job.id)} if with_token else {}
        response = client.get(f"/tasks/jobs/{job.id}/", query)
        if response.status_code == 200:
            assert response.json()["result"] == 42
            return "yes"
        assert response.status_code == 403
        assert "result" not in response.json()
        return "no"

    return probe


def metrics(with_token: bool) -> Callable[[Client], str]:
    def probe(client: Client) -> str:
        headers = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
        response = client.get("/tasks/metrics/", headers=headers)
        if response.status_code == 200:
            return "yes"
        assert response.status_code in (401, 403), response
        return "no"

    return probe


def _job_id() -> list[Any]:
    return [JobFactory().id]


def _worker_id() -> list[Any]:
    from djqueue.db import broker
    from djqueue.db.models import Worker

    broker.register_worker("host.2", "host", 2, "solo", 1, ["default"])
    return [Worker.objects.get(name="host.2").pk]


PROBES: dict[str, Callable[[Client], str]] = {
    "job list and job pages": pages(
        "admin:djqueue_job_changelist", "admin:djqueue_job_change", args=_job_id
    ),
    "dashboard": pages("admin:djqueue_dashboard"),
    "dashboard: live workers": dashboard_workers,
    "worker list and worker pages": pages(
        "admin:djqueue_worker_changelist", "admin:djqueue_worker_change", args=_worker_id
    ),
    "queue list": pages("admin:djqueue_queue_changelist"),
    "periodic tasks and schedules": pages(
        "admin:djqueue_periodictask_changelist",
        "admin:djqueue_intervalschedule_changelist",
        "admin:djqueue_crontabschedule_changelist",
        "admin:djqueue_solarschedule_changelist",
        "admin:djqueue_clockedschedule_changelist",
    ),
    "revoke jobs": job_action("revoke_jobs", states.PENDING, button="revoke"),
    "terminate running jobs": job_action(
        "terminate_jobs", states.STARTED, factory=StartedJobFactory, button="terminate"
    ),
    "retry failed jobs": job_action("retry_failed_jobs", states.FAILURE, button="retry"),
    "run a job again (job page)": run_again,
    "delete finished jobs": job_action("delete_finished_jobs", states.SUCCESS),
    "pause and resume queues": pause_queues,
    "dashboard: fleet controls": dashboard_fleet,
    "pause or resume every queue (dashboard)": pause_every_queue,
    "grow, shrink or shut down every live worker (dashboard)": control_every_worker,
    "change a queue's limits": limit_queue,
    "edit a periodic task": edit_periodic,
    "run a periodic task now": run_periodic_now,
    "point a periodic task at a past time": point_at_past,
    "preview a schedule's next runs while editing it": preview_schedule,
    "control a worker (pool size, log level, shutdown)": control_worker,
    "job status view": status(with_token=False),
    "job status view with the job's token": status(with_token=True),
    "metrics": metrics(with_token=False),
    "metrics with the bearer token": metrics(with_token=True),
}


def test_every_row_of_the_table_has_a_probe() -> None:
    assert set(documented()) == set(PROBES)


@pytest.fixture
def roles(settings: Any) -> None:
    settings.DJQUEUE = {**settings.DJQUEUE, "METRICS_TOKEN": TOKEN}
    call_command("djqueue", "roles", stdout=io.StringIO())


CELLS = [(row, role) for row in PROBES for role in ROLES]


@pytest.mark.parametrize(("row", "role"), CELLS, ids=[f"{r}|{o}" for r, o in CELLS])
def test_each_role_gets_what_the_docs_say(row: str, role: str, roles: None) -> None:
    assert PROBES[row](client_for(role)) == documented()[row][role]
