"""The console walked in a real browser by each role of docs/monitoring.md#roles, page by
page, with jobs in every state, a workflow, a paused and limited queue, a live worker
and a dead one holding a job, and a periodic task with runs: the operator (read-only)
sees every page and no control; the admin sees the same pages with every control.
What each role can do is checked request by request in
tests/integration/test_access_matrix.py. Screenshots go to artifacts/browser/ (and, with
DJQUEUE_DOCS_SCREENSHOTS=1, those the docs show to docs/images/)."""

from __future__ import annotations

import datetime
import io
import os
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

import djqueue
from djqueue.core import states
from djqueue.db import broker
from djqueue.db.models import IntervalSchedule, Job, PeriodicRun, PeriodicTask, Worker
from djqueue.ops import stats
from tests.acceptance import test_browser as browser
from tests.acceptance.conftest import REPO_ROOT, Workers, wait_until
from tests.factories import JobFactory, ReceivedJobFactory, StartedJobFactory
from tests.testapp import tasks

page = browser.page
pytestmark = browser.pytestmark

IMAGES = REPO_ROOT / "docs" / "images"
DEAD = "djqueue@db-2.7.dead00"


def _docs_shot(page: Any, name: str) -> None:
    browser._shot(page, name)
    if os.environ.get("DJQUEUE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)


def _console(now: datetime.datetime) -> dict[str, Any]:
    """Everything an on-call person meets, as rows (the live worker is started apart)."""
    browser._some_jobs(now)
    broker.set_paused("reports", True)
    broker.set_queue_limits("reports", 2, (100, 60.0))
    step = djqueue.chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async(queue="reports")
    # A worker that died holding a job: no heartbeat for ten minutes, never stopped.
    broker.register_worker(DEAD, "db-2", 7, "prefork", 4, ["reports"])
    Worker.objects.filter(name=DEAD).update(
        started_at=now - datetime.timedelta(hours=3),
        last_heartbeat=now - datetime.timedelta(minutes=10),
    )
    # Their leases run for an hour yet: no rescue takes them back during the test.
    lease = {
        "worker": DEAD,
        "queue": "reports",
        "lease_expires_at": now + datetime.timedelta(hours=1),
    }
    StartedJobFactory(task_name=tasks.sleep.name, args=[60], **lease)
    ReceivedJobFactory(task_name=tasks.echo.name, **lease)
    for state in (states.REJECTED, states.IGNORED):
        JobFactory(state=state, task_name=tasks.echo.name, attempt=1, finished_at=now)
    every_hour = IntervalSchedule.objects.create(every=1, period="hours")
    nightly = PeriodicTask.objects.create(
        name="nightly sums", task=tasks.add.name, args=[1, 2], interval=every_hour
    )
    hour = now.replace(minute=0, second=0, microsecond=0)
    for ago, state in ((2, states.SUCCESS), (1, states.FAILURE)):
        job = Job.objects.filter(state=state).order_by("-finished_at").first()
        assert job is not None
        slot = hour - datetime.timedelta(hours=ago)
        PeriodicRun.objects.create(
            periodic_task=nightly, slot=slot, job_id=job.id, enqueued_at=slot
        )
    PeriodicTask.objects.filter(pk=nightly.pk).update(
        last_run_at=hour - datetime.timedelta(hours=1), total_run_count=2
    )
    return {"step": step, "periodic": nightly}


def _log_in_as(page: Any, live_server: Any, username: str, role: str) -> None:
    from django.contrib.auth.models import User

    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=f"djqueue {role}"))
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/djqueue/job/dashboard/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def _walk(page: Any, live_server: Any, made: dict[str, Any], role: str) -> None:
    """Every page, as ``role`` sees it: the same pages, controls only for the admin."""
    controls = 1 if role == "admin" else 0
    url = live_server.url

    # The overview: the lost worker and the paused queue flagged, fleet controls.
    page.wait_for_function("() => window.Chart && Chart.getChart('djq-throughput-chart')")
    kinds = page.locator("#djq-alerts li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert {"lost-worker", "paused", "no-worker", "long-wait"} <= set(kinds), kinds
    assert page.locator("#djq-fleet").count() == controls
    assert page.locator("#workers").count() == 1
    browser._shot(page, f"9-{role}-overview")

    # The job list: every state, batch actions for the admin only.
    page.goto(f"{url}/admin/djqueue/job/")
    shown = set(page.locator("#result_list .djq-state").all_inner_texts())
    assert shown == set(states.ALL), shown
    assert page.locator("select[name=action]").count() == controls
    browser._shot(page, f"9-{role}-jobs")

    # A failed job's page: Retry and Run again for the admin, no button for the operator.
    failed = Job.objects.filter(state=states.FAILURE).first()
    assert failed is not None
    page.goto(f"{url}/admin/djqueue/job/{failed.id}/change/")
    buttons = page.locator("#djq-job-actions button").all_inner_texts()
    assert buttons == (["Retry", "Run again"] if controls else []), buttons

    # A workflow step waiting for the step before it, in the paused queue that only the
    # dead worker served and whose limit of two at once the dead worker's jobs fill.
    page.goto(f"{url}/admin/djqueue/job/{made['step'].id}/change/")
    assert page.locator("#djq-workflow a.djq-node").count() == 2
    why = page.locator("#djq-why li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert why == ["upstream", "paused", "no-worker", "queue-limit"], why
    assert page.locator("#djq-job-actions button").count() == controls  # Revoke

    # The queues: paused and limited; Pause/Resume and Limits for the admin only.
    page.goto(f"{url}/admin/djqueue/queue/")
    reports = page.locator('#djq-queue-table tr[data-queue="reports"]')
    assert reports.locator(".djq-queue-status").inner_text() == "paused"
    assert reports.locator(".djq-limits").inner_text() == "2 at once, 100/m"
    assert page.locator(".djq-queue-buttons").count() == (
        page.locator("#djq-queue-table tbody tr").count() if controls else 0
    )

    # The workers: the dead one lost, the live one alive; controls on the live one's page.
    page.goto(f"{url}/admin/djqueue/worker/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    lost = rows.filter(has_text="db-2")
    assert "lost" in lost.inner_text()
    heard = lost.locator(".field-heartbeat_when .djq-ago").inner_text()
    assert heard.endswith(" min ago") and int(heard.split()[0]) >= 10, heard
    assert "alive" in rows.filter(has_not_text="db-2").inner_text()
    if controls:
        _docs_shot(page, "workers")
    live = stats.live_workers()[0]
    page.goto(f"{url}/admin/djqueue/worker/{live.pk}/change/")
    assert page.locator("#djq-grow").count() == controls
    dead = Worker.objects.get(name=DEAD)
    page.goto(f"{url}/admin/djqueue/worker/{dead.pk}/change/")
    assert page.locator(".field-held_jobs a").count() == 2
    assert page.locator("#djq-grow").count() == 0  # nothing to steer, whoever looks

    # The periodic tasks: last outcome linked; run now and the Enabled box for the admin.
    page.goto(f"{url}/admin/djqueue/periodictask/")
    row = page.locator("#result_list tbody tr").filter(has_text="nightly sums")
    assert row.locator(".field-last_outcome a").inner_text().startswith(states.FAILURE)
    assert page.locator("select[name=action]").count() == controls
    assert row.locator('input[name$="-enabled"]').count() == controls
    if controls:
        _docs_shot(page, "periodic-tasks")
    page.goto(f"{url}/admin/djqueue/periodictask/{made['periodic'].pk}/change/")
    assert page.locator(".djq-next-runs li").count() == 5
    assert page.locator(".djq-recent-runs tbody tr").count() == 2
    assert page.locator("input[name=_save]").count() == controls
    if controls:
        _docs_shot(page, "periodic-task")


@pytest.mark.django_db(transaction=True)
def test_each_role_walks_every_page_and_sees_only_its_controls(
    page: Any, live_server: Any, workers: Workers, settings: Any
) -> None:
    # Jobs due for a second count as waiting long: every alert but a failure spike shows.
    settings.DJQUEUE = {**settings.DJQUEUE, "ALERT_WAIT_SECONDS": 1}
    call_command("djqueue", "roles", stdout=io.StringIO())
    made = _console(timezone.now())
    # A live worker of a queue of its own: the jobs above stay in the states they are in.
    workers.start("-P", "threads", "-c", "2", "-Q", "live")
    wait_until(lambda: stats.live_workers(), 20, "the worker to be alive")
    page.set_viewport_size({"width": 1920, "height": 1080})
    for role in ("operator", "admin"):
        _log_in_as(page, live_server, f"on-call-{role}", role)
        _walk(page, live_server, made, role)
