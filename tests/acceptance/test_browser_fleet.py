"""The console's fleet pages in a real browser: a schedule's next runs follow its form
as it is typed; a worker's page grows its pool, and shows the new size; the queues page
flags a paused and an unserved queue, pauses and resumes one; the overview pauses and
resumes every queue and grows every pool of a real worker; a worker killed while it
runs a job shows as lost on the overview, its job's page and the worker pages.
Screenshots go to artifacts/browser/ (and with DJQUEUE_DOCS_SCREENSHOTS=1 into
docs/images/)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from djqueue.db import broker
from djqueue.db.models import CrontabSchedule, Job, Worker
from djqueue.ops import stats
from tests.acceptance import test_browser as browser
from tests.acceptance.conftest import REPO_ROOT, Workers, wait_until
from tests.factories import JobFactory
from tests.testapp import tasks

# The browser page (a fixture) and the skip when Chromium is missing, as the admin's test.
page = browser.page
pytestmark = browser.pytestmark

IMAGES = REPO_ROOT / "docs" / "images"


def _docs_shot(page: Any, name: str) -> None:
    browser._shot(page, name)
    if os.environ.get("DJQUEUE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)


def _log_in(page: Any, live_server: Any, django_user_model: Any, next_url: str) -> None:
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    # The click returns before the page it leads to has loaded.
    page.wait_for_url(lambda url: "/login/" not in url)


def _updates(page: Any) -> int:
    return int(page.get_attribute(".djq-next-runs", "data-updates") or 0)


@pytest.mark.django_db(transaction=True)
def test_a_crontab_previews_its_next_runs_while_it_is_typed(
    page: Any, live_server: Any, django_user_model: Any
) -> None:
    crontab = CrontabSchedule.objects.create(minute="0", hour="8")
    url = f"/admin/djqueue/crontabschedule/{crontab.pk}/change/"
    _log_in(page, live_server, django_user_model, url)
    runs = page.locator(".djq-next-runs li")
    assert runs.count() == 5
    assert all(" 08:00:00 " in text for text in runs.all_inner_texts())

    page.fill("#id_minute", "*/15")
    page.fill("#id_hour", "9-17")
    page.wait_for_function(
        """() => [...document.querySelectorAll(".djq-next-runs li")]
                 .some((li) => / 09:15:00 | 1\\d:45:00 /.test(li.textContent))"""
    )
    texts = runs.all_inner_texts()
    assert len(texts) == 5
    minutes = {text.split(" ")[1][3:5] for text in texts}
    assert minutes <= {"00", "15", "30", "45"} and len(minutes) > 1
    _docs_shot(page, "crontab-preview")

    done = _updates(page)
    page.fill("#id_minute", "61")
    page.wait_for_function(
        f"() => Number(document.querySelector('.djq-next-runs').dataset.updates) > {done}"
    )
    error = page.locator(".djq-next-runs .djq-error")
    assert error.is_visible()
    assert "crontab minute='61' is invalid" in error.inner_text()
    assert runs.count() == 0
    # Nothing was saved by the previews.
    assert CrontabSchedule.objects.get(pk=crontab.pk).minute == "0"


@pytest.mark.django_db(transaction=True)
def test_a_workers_page_grows_its_pool_and_shows_the_new_size(
    page: Any, live_server: Any, workers: Workers, django_user_model: Any
) -> None:
    worker = workers.start("-P", "prefork", "-c", "2", "-Q", "default,mail")
    row = Worker.objects.get(name__startswith=worker.name_prefix, stopped_at__isnull=True)
    running = tasks.sleep.delay(30)
    wait_until(lambda: Job.objects.get(pk=running.id).state == "STARTED", 20, "a running job")
    url = f"/admin/djqueue/worker/{row.pk}/change/"
    _log_in(page, live_server, django_user_model, url)
    concurrency = page.locator(".field-concurrency .readonly")
    assert concurrency.inner_text() == "2"
    assert page.locator(".field-held_jobs a").first.inner_text() == str(running.id)
    assert page.locator(".djq-worker-children tbody tr").count() == 2
    _docs_shot(page, "worker")

    page.fill("#djq-slots", "2")
    page.click("#djq-grow")
    page.wait_for_selector("ul.messagelist")
    assert "(pool size 4)" in page.inner_text("ul.messagelist")

    def shows_four() -> bool:
        page.reload()
        return bool(concurrency.inner_text() == "4")

    wait_until(shows_four, 20, "the page to show the grown pool", interval=0.5)
    assert page.locator(".djq-worker-children tbody tr").count() == 4
    running.revoke(terminate=True)


@pytest.mark.django_db(transaction=True)
def test_the_queues_page_flags_queues_and_pauses_one(
    page: Any, live_server: Any, workers: Workers, django_user_model: Any
) -> None:
    broker.set_paused("reports", True)
    broker.set_queue_limits("reports", 2, (100, 60.0))
    JobFactory.create_batch(3, queue="reports", task_name=tasks.echo.name)
    JobFactory.create_batch(2, queue="nobody", task_name=tasks.echo.name)
    workers.start("-P", "threads", "-c", "2", "-Q", "default,mail")
    wait_until(lambda: stats.live_workers(), 20, "the worker to be alive")
    _log_in(page, live_server, django_user_model, "/admin/djqueue/queue/")
    row = page.locator('#djq-queue-table tr[data-queue="nobody"]')
    assert row.locator(".djq-queue-status").inner_text() == "no live worker"
    assert row.locator(".djq-due").inner_text() == "2"
    reports = page.locator('#djq-queue-table tr[data-queue="reports"]')
    assert reports.locator(".djq-queue-status").inner_text() == "paused"
    assert reports.locator(".djq-limits").inner_text() == "2 at once, 100/m"
    assert page.locator('#djq-queue-table tr[data-queue="mail"] .djq-workers').inner_text() == "1"
    _docs_shot(page, "queues")

    page.locator('#djq-queue-table tr[data-queue="mail"] button[value="pause"]').click()
    page.wait_for_selector("ul.messagelist")
    assert "Paused queue mail." in page.inner_text("ul.messagelist")
    mail = page.locator('#djq-queue-table tr[data-queue="mail"]')
    assert mail.locator(".djq-queue-status").inner_text() == "paused"
    page.locator('#djq-queue-table tr[data-queue="mail"] button[value="resume"]').click()
    page.wait_for_selector("text=Resumed queue mail.")
    assert tasks.add.apply_async((1, 1), queue="mail").get(timeout=20) == 2


@pytest.mark.django_db(transaction=True)
def test_the_overview_pauses_every_queue_and_grows_every_pool(
    page: Any, live_server: Any, workers: Workers, django_user_model: Any
) -> None:
    worker = workers.start("-P", "threads", "-c", "2", "-Q", "default,mail")
    wait_until(lambda: stats.live_workers(), 20, "the worker to be alive")
    _log_in(page, live_server, django_user_model, "/admin/djqueue/job/dashboard/")
    page.wait_for_selector("#djq-fleet")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#djq-pause-all")
    page.wait_for_selector("ul.messagelist")
    assert "Paused 2 queue(s): default, mail." in page.inner_text("ul.messagelist")
    assert broker.paused_queues() == {"default", "mail"}
    worker.wait_for_log("Paused queues: default, mail.")
    held = tasks.add.delay(2, 2)
    # The worker heard of the pause (its claims skip the queues): the job stays waiting
    # while the overview flags both queues.
    page.wait_for_selector('#djq-alerts li[data-kind="paused"]')
    assert "'mail' is paused" in page.inner_text("#djq-alerts")
    assert Job.objects.get(pk=held.id).state == "PENDING"

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#djq-resume-all")
    page.wait_for_selector("text=Resumed 2 queue(s): default, mail.")
    assert held.get(timeout=30) == 4

    page.fill("#djq-fleet-slots", "2")
    page.click("#djq-grow-all")
    page.wait_for_selector("ul.messagelist")
    said = page.inner_text("ul.messagelist")
    assert "Grow every pool by 2: 1 of 1 live worker(s) answered" in said, said
    assert "(pool size 4)" in said
    row = Worker.objects.get(name__startswith=worker.name_prefix, stopped_at__isnull=True)
    wait_until(
        lambda: Worker.objects.get(pk=row.pk).concurrency == 4, 20, "the pool to show its size"
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_it_runs_a_job_is_lost_on_every_page(
    page: Any, live_server: Any, workers: Workers, django_user_model: Any, settings: Any
) -> None:
    # The console counts a worker lost after three of its heartbeats (half a second here,
    # as the acceptance workers beat).
    settings.DJQUEUE = {**settings.DJQUEUE, "HEARTBEAT_SECONDS": 0.5}
    worker = workers.start("-P", "threads", "-c", "2", "-Q", "default")
    running = tasks.sleep.delay(60)
    wait_until(lambda: Job.objects.get(pk=running.id).state == "STARTED", 20, "a running job")
    row = Worker.objects.get(name__startswith=worker.name_prefix)
    worker.send(signal.SIGKILL)
    worker.wait_exit(20)

    _log_in(page, live_server, django_user_model, "/admin/djqueue/job/dashboard/")
    # The overview updates itself until it flags the worker (no reload).
    alert = page.locator('#djq-alerts li[data-kind="lost-worker"]')
    alert.wait_for(timeout=30_000)
    assert f"Worker '{row.name}' has sent no heartbeat since" in alert.inner_text()
    assert "holds 1 job(s)" in alert.inner_text()
    browser._shot(page, "10-lost-worker-overview")

    # Its link: the jobs the dead worker holds, and the one job's page says why it is stuck.
    alert.locator("a").click()
    page.wait_for_url("**worker__exact=**")
    assert browser._shown_ids(page) == [str(running.id)]
    page.click("#result_list .djq-id a")
    page.wait_for_url(f"**/{running.id}/change/")
    reasons = page.locator("#djq-why li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert reasons == ["lost-worker"]
    assert f"Its worker '{row.name}' has sent no heartbeat since" in page.inner_text("#djq-why")

    # The worker list says it is lost; its page offers nothing to steer.
    page.goto(f"{live_server.url}/admin/djqueue/worker/")
    assert "lost" in page.locator("#result_list tbody tr").filter(has_text=row.name).inner_text()
    page.goto(f"{live_server.url}/admin/djqueue/worker/{row.pk}/change/")
    assert "This worker is not alive" in page.inner_text("#djq-worker-control")
    assert page.locator("#djq-grow").count() == 0
