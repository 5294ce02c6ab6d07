"""The admin in a real browser: log in, see the dashboard and its chart, filter failed
jobs, retry one, and watch it succeed. Screenshots go to artifacts/browser/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from djqueue.db.models import Job
from tests.acceptance.conftest import REPO_ROOT, Workers, wait_until
from tests.testapp import tasks

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is not installed (.ci/browser-setup)"
)
SHOTS = REPO_ROOT / "artifacts" / "browser"


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # are plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            # As root in a container, and with nothing to reach but this machine.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()
            # The test's ORM calls ran beside Playwright's loop, on connections of their
            # own: close them, or the test database cannot be dropped at the end.
            connections.close_all()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_log_in_see_dashboard_retry_a_failed_job(
    page: Any, live_server: Any, workers: Workers, django_user_model: Any, tmp_path: Path
) -> None:
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    marker = tmp_path / "ready"
    ok = tasks.add.delay(1, 2)
    failing = tasks.fail_until_marker.delay(str(marker))
    workers.start("-P", "threads", "-c", "2")
    wait_until(lambda: Job.objects.get(pk=failing.id).state == "FAILURE", 15, "the job to fail")
    assert ok.get(timeout=10) == 3

    page.goto(f"{live_server.url}/admin/login/?next=/admin/djqueue/job/dashboard/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#throughput svg polyline")
    assert "Task queue dashboard" in page.content()
    _shot(page, "1-dashboard")

    page.goto(f"{live_server.url}/admin/djqueue/job/")
    page.click("#changelist-filter >> text=Failure")
    page.wait_for_url("**state__exact=FAILURE**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    _shot(page, "2-failed-jobs")

    marker.write_text("now it works")
    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "retry_failed_jobs")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist")
    assert "Queued 1 failed job(s) again." in page.content()

    job_page = f"{live_server.url}/admin/djqueue/job/{failing.id}/change/"

    def succeeded() -> bool:
        page.goto(job_page)
        return ">SUCCESS<" in page.content()

    wait_until(succeeded, timeout=15, what="the retried job to succeed", interval=0.5)
    _shot(page, "3-retried-job")
    assert Job.objects.get(pk=failing.id).result == "done"
