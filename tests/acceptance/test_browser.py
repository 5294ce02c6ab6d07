"""The admin in a real browser: log in, see the overview, filter failed jobs, retry one,
and watch it succeed; the overview updates itself, pauses, and links from its charts and
figures to the jobs they count; job pages say why each job waits (or, on a dead worker,
gets nowhere), draw a chord, and retry a job that failed for real. Screenshots go to
artifacts/browser/ (and, with DJQUEUE_DOCS_SCREENSHOTS=1, those the docs show to
docs/images/)."""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from djqueue.core import states
from djqueue.db import broker, queue_gates, series
from djqueue.db.models import Job, QueueMinute
from djqueue.ops import stats
from tests.acceptance.conftest import REPO_ROOT, Workers, wait_until
from tests.factories import JobFactory
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
def test_log_in_see_overview_retry_a_failed_job(
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
    page.wait_for_function("() => window.Chart && Chart.getChart('djq-throughput-chart')")
    assert "Task queue overview" in page.content()
    _shot(page, "1-overview")

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
    assert page.inner_text("#djq-batch-count") == "1"  # asked first, with the count
    page.click("#djq-batch-yes")
    page.wait_for_selector("ul.messagelist")
    assert "Queued again 1 of 1 job(s)." in page.content()

    job_page = f"{live_server.url}/admin/djqueue/job/{failing.id}/change/"

    def succeeded() -> bool:
        page.goto(job_page)
        return ">SUCCESS<" in page.content()

    wait_until(succeeded, timeout=15, what="the retried job to succeed", interval=0.5)
    _shot(page, "3-retried-job")
    assert Job.objects.get(pk=failing.id).result == "done"


# The overview ---------------------------------------------------------------------------

# DJQUEUE_DOCS_SCREENSHOTS=1 also writes the overview's screenshot into the docs.
IMAGES = REPO_ROOT / "docs" / "images"


def _history(now: datetime.datetime) -> None:
    """An hour of jobs that ended (a failure spike in the last minutes) and of depth
    samples, rolled up as workers would have done it."""
    minute = now.replace(second=0, microsecond=0)
    rows = []
    for ago in range(2, 58):
        at = minute - datetime.timedelta(minutes=ago)
        busy = 6 + (ago * 7) % 11
        for n in range(busy):
            task = tasks.add.name if n % 3 else tasks.echo.name
            rows.append(_ended_row(at, n, task, states.SUCCESS, runtime=0.02 + 0.01 * (n % 7)))
        if ago <= 5:
            for n in range(4):
                rows.append(_ended_row(at, n, tasks.fail.name, states.FAILURE, runtime=0.3))
    Job.objects.bulk_create(rows)
    QueueMinute.objects.bulk_create(
        QueueMinute(
            minute=minute - datetime.timedelta(minutes=ago),
            queue=queue,
            waiting=max(0, int(scale * (30 - abs(ago - 25)))),
            scheduled=0,
            running=0,
        )
        for ago in range(2, 58)
        for queue, scale in (("", 1.5), ("default", 1.0), ("reports", 0.5))
    )
    series.rewrite_minutes(minute - datetime.timedelta(hours=1), minute)
    series.rollup()


def _ended_row(at: datetime.datetime, n: int, task: str, state: str, runtime: float) -> Job:
    finished = at + datetime.timedelta(seconds=(n * 5) % 60)
    started = finished - datetime.timedelta(seconds=runtime)
    return JobFactory.build(
        task_name=task,
        state=state,
        attempt=1,
        eta=started - datetime.timedelta(seconds=0.01 * n),
        started_at=started,
        finished_at=finished,
        worker="web-1",
    )


def _requests_to(page: Any, url_part: str) -> list[str]:
    seen: list[str] = []
    page.on(
        "request", lambda request: seen.append(request.url) if url_part in request.url else None
    )
    return seen


def _bar_position(page: Any, outcome: str) -> dict[str, float]:
    """Where, on the page, the last bar of ``outcome`` is drawn (from the chart itself)."""
    return page.evaluate(
        """(outcome) => {
            const canvas = document.getElementById("djq-throughput-chart");
            const chart = Chart.getChart(canvas);
            const index = chart.data.datasets.findIndex((d) => d.label === outcome);
            const values = chart.data.datasets[index].data;
            let last = values.length - 1;
            while (last >= 0 && !values[last]) last -= 1;
            const bar = chart.getDatasetMeta(index).data[last];
            const box = canvas.getBoundingClientRect();
            return {x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2, bin: last};
        }""",
        outcome,
    )


def _peak_position(page: Any, queue: str) -> dict[str, float]:
    """Where, on the page, the depth chart draws the highest point of ``queue``'s line."""
    return page.evaluate(
        """(queue) => {
            const canvas = document.getElementById("djq-depth-chart");
            const chart = Chart.getChart(canvas);
            const index = chart.data.datasets.findIndex((d) => d.label === queue);
            const values = chart.data.datasets[index].data;
            const peak = values.indexOf(Math.max(...values.filter((v) => v !== null)));
            const point = chart.getDatasetMeta(index).data[peak];
            const box = canvas.getBoundingClientRect();
            return {x: box.left + point.x, y: box.top + point.y};
        }""",
        queue,
    )


@pytest.mark.django_db(transaction=True)
def test_overview_updates_live_pauses_and_links_to_the_jobs(
    page: Any, live_server: Any, workers: Workers, django_user_model: Any
) -> None:
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    _history(timezone.now())
    broker.set_paused("reports", True)
    JobFactory.create_batch(3, queue="reports", task_name=tasks.echo.name)
    workers.start("-P", "threads", "-c", "2")
    wait_until(lambda: stats.live_workers(), 15, "the worker to be alive")
    data = "/admin/djqueue/job/dashboard/data/"
    fetched = _requests_to(page, data)

    page.clock.install()  # the page's timers run when the test says so
    page.goto(f"{live_server.url}/admin/login/?next=/admin/djqueue/job/dashboard/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_function("() => window.Chart && Chart.getChart('djq-throughput-chart')")
    alerts = page.locator("#djq-alerts li")
    assert "'tests.testapp.tasks.fail'" in alerts.filter(has_text="failed").inner_text()
    assert "'reports' is paused" in page.locator("#djq-alerts").inner_text()

    # Live: jobs sent to a queue nobody serves show up without a reload.
    page.evaluate("window.sameDocument = true")
    for n in range(4):
        tasks.add.apply_async((n, n), queue="nobody")
    page.clock.run_for(5_000)
    page.wait_for_selector('#djq-queues tr[data-queue="nobody"]')
    assert page.locator('#djq-queues tr[data-queue="nobody"] .djq-due').inner_text() == "4"
    page.wait_for_selector('#djq-alerts li[data-kind="no-worker"]')
    assert page.evaluate("window.sameDocument") is True
    assert len(fetched) >= 1
    _shot(page, "4-overview")
    if os.environ.get("DJQUEUE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(IMAGES / "overview.png"), full_page=True)

    # Paused: nothing is fetched however long it waits; Live fetches at once.
    page.click("#djq-live")
    assert page.get_attribute("#djq-live", "aria-pressed") == "false"
    assert page.inner_text("#djq-live") == "Paused"
    before = len(fetched)
    tasks.add.apply_async((9, 9), queue="nobody")
    page.clock.run_for(60_000)
    assert len(fetched) == before
    assert page.locator('#djq-queues tr[data-queue="nobody"] .djq-due').inner_text() == "4"
    page.click("#djq-live")
    assert page.inner_text("#djq-live") == "Live"
    page.wait_for_function(
        """() => document.querySelector('#djq-queues tr[data-queue="nobody"] .djq-due')
                 .textContent === "5" """
    )
    # A hidden tab fetches nothing either.
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {value: true, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    before = len(fetched)
    page.clock.run_for(60_000)
    assert len(fetched) == before
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {value: false, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    wait_until(lambda: len(fetched) > before, 10, "the shown tab to catch up")

    # A bar of failures opens the jobs that failed in that minute, and only those.
    bar = _bar_position(page, states.FAILURE)
    page.mouse.click(bar["x"], bar["y"])
    page.wait_for_url("**state__exact=FAILURE**")
    shown = page.locator("#result_list tbody tr")
    assert shown.count() == 4
    assert "tests.testapp.tasks.fail" in page.inner_text("#result_list")
    _shot(page, "5-failures-of-a-minute")

    # A number: the failure rate opens every failure of the range.
    page.go_back()
    page.wait_for_selector("#djq-figure-failure-rate a")
    page.click("#djq-figure-failure-rate a")
    page.wait_for_url("**state__exact=FAILURE**")
    assert page.locator("#result_list tbody tr").count() == 16

    # A line of the depth chart, at its peak: the jobs waiting in that queue now.
    page.go_back()
    page.wait_for_function("() => window.Chart && Chart.getChart('djq-depth-chart')")
    point = _peak_position(page, "reports")
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url("**queue__exact=reports**")
    assert page.locator("#result_list tbody tr").count() == 3
    assert set(page.locator("#result_list .djq-state").all_inner_texts()) == {states.PENDING}


# The job page ---------------------------------------------------------------------------

WEB_WORKER = "djqueue@web-1.100.a1b2c3"


def _log_in(page: Any, live_server: Any, django_user_model: Any, next_url: str) -> None:
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    # The click returns before the page it leads to has loaded.
    page.wait_for_url(lambda url: "/login/" not in url)


def _finish(claimed: Any, state: str, **outcome: Any) -> None:
    from djqueue.core.records import Outcome

    broker.finish(
        [
            Outcome(
                claimed.id,
                claimed.attempt,
                claimed.task_name,
                state,
                worker=claimed.worker,
                **outcome,
            )
        ]
    )


def _claim(limit: int) -> list[Any]:
    return broker.claim(["default"], limit, WEB_WORKER, 300.0, limited=True)


@pytest.mark.django_db(transaction=True)
def test_job_pages_say_why_each_job_waits_draw_workflows_and_retry(
    page: Any, live_server: Any, workers: Workers, django_user_model: Any
) -> None:
    import djqueue

    # A worker row that serves default and mail (no process takes their jobs: they wait
    # for the reasons below), and a real worker on "work" for a job that fails for real.
    broker.register_worker(WEB_WORKER, "web-1", 100, "threads", 4, ["default", "mail", "batch"])
    body = djqueue.chord([tasks.add.s(n, n) for n in range(3)], tasks.xsum.s()).apply_async()
    first, second = _claim(2)
    _finish(first, states.SUCCESS, result="0")
    broker.mark_started(WEB_WORKER, [(second.id, second.attempt, 0.0)])
    step = djqueue.chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async()
    rate = [tasks.twice_a_minute.delay(n) for n in range(3)]
    busy = [tasks.per_account.delay(7) for _ in range(3)]
    # The chord's third header job, the chain's first step, 2 starts, 2 of the account.
    assert len(_claim(10)) == 6
    unique = tasks.unique_report.delay(7)
    [held] = _claim(1)
    holder = tasks.unique_report.delay(7)
    _finish(held, states.FAILURE, error_type="ValueError", error_message="no data yet")
    broker.set_paused("mail", True)
    later = tasks.add.apply_async((1, 2), queue="mail", countdown=3600)
    nobody = tasks.add.apply_async((1, 2), queue="reports")
    queued = [tasks.add.delay(n, n) for n in range(3)]
    # A job running on a worker that died (its row says it stopped, the job is still held).
    stranded = tasks.add.apply_async((5, 5), queue="gone")
    [lost] = broker.claim(["gone"], 1, "djqueue@db-2.7.dead00", 300.0, limited=False)
    broker.mark_started(lost.worker, [(lost.id, lost.attempt, 0.0)])
    # A queue of its own limited to one job at once over all workers: one held, one waits.
    broker.set_queue_limits("batch", 1, None)
    broker.paused_queues()  # a claimer takes note of the queues' limits, as a worker does
    limited = [tasks.add.apply_async((n, n), queue="batch") for n in range(2)]
    try:
        assert len(broker.claim(["batch"], 2, WEB_WORKER, 300.0, limited=False)) == 1
    finally:
        queue_gates.update([])
    flaky = tasks.always_flaky.apply_async(queue="work")
    workers.start("-P", "solo", "-Q", "work")
    wait_until(lambda: Job.objects.get(pk=flaky.id).state == states.FAILURE, 30, "the job to fail")

    _log_in(page, live_server, django_user_model, "/admin/djqueue/job/")
    docs = os.environ.get("DJQUEUE_DOCS_SCREENSHOTS") == "1"

    def job_page(result: Any) -> None:
        broker.worker_heartbeat(WEB_WORKER, 0)  # the row's worker stays live
        page.goto(f"{live_server.url}/admin/djqueue/job/{result.id}/change/")

    def reasons() -> list[str]:
        return page.locator("#djq-why li").evaluate_all("items => items.map(i => i.dataset.kind)")

    expected = [
        (body, ["upstream"], "chord-body"),
        (step, ["upstream"], "chain-step"),
        (later, ["not-due", "paused"], "not-due-paused"),
        (nobody, ["no-worker"], "no-worker"),
        (rate[2], ["rate-limit"], "rate-limit"),
        (busy[2], ["concurrency-limit"], "concurrency-limit"),
        (limited[1], ["queue-limit"], "queue-limit"),
        (queued[2], ["queued"], "queued"),
        (rate[0], ["reserved"], "reserved"),
        (unique, ["unique-key"], "unique-key"),
        (stranded, ["lost-worker"], "lost-worker"),
    ]
    for result, kinds, name in expected:
        job_page(result)
        assert reasons() == kinds, name
        _shot(page, f"6-job-{name}")
    for result, image in [(later, "job-waiting"), (rate[2], "job-rate-limit")]:
        job_page(result)
        if docs:
            page.screenshot(path=str(IMAGES / f"{image}.png"))
    job_page(rate[2])
    assert "2 started in the last period" in page.inner_text("#djq-why")
    assert "0 job(s) under this limit ahead of it" in page.inner_text("#djq-why")
    job_page(busy[2])
    assert "2 running now; 0 job(s) with this key ahead of it" in page.inner_text("#djq-why")
    job_page(limited[1])
    said = page.inner_text("#djq-why")
    assert "1 of its jobs held by workers, 1 at once; 0 job(s) ahead of it" in said, said
    job_page(unique)
    page.click("#djq-why a")
    page.wait_for_url(f"**/{holder.id}/change/")

    # The chord: its header framed, the body waiting for two of three, each box a link.
    job_page(body)
    nodes = page.locator("#djq-workflow a.djq-node")
    assert nodes.count() == 4
    states_drawn = nodes.evaluate_all("nodes => nodes.map(n => n.dataset.state).sort()")
    assert states_drawn == sorted([states.SUCCESS, states.STARTED, states.RECEIVED, states.PENDING])
    assert "2 of 3 header job(s) not finished" in page.inner_text("#djq-why")
    assert page.locator("#djq-workflow .djq-frame text").text_content() == "chord header"
    _shot(page, "7-job-workflow")
    if docs:
        page.screenshot(path=str(IMAGES / "job-workflow.png"))
    page.click(f'#djq-workflow a[data-job="{first.id}"]')
    page.wait_for_url(f"**/{first.id}/change/")
    assert page.locator("#djq-workflow a.djq-node-current").get_attribute("data-job") == str(
        first.id
    )

    # A job that failed for real: three attempts, its traceback, and a Retry that asks.
    job_page(flaky)
    timeline = page.locator("#djq-timeline tbody tr")
    assert timeline.count() == 3
    outcomes = timeline.evaluate_all("rows => rows.map(r => r.dataset.outcome)")
    assert outcomes == [states.RETRY, states.RETRY, states.FAILURE]
    assert "ConnectionError: service down" in page.inner_text(".djq-exception")
    user = page.inner_text(".djq-user-frames")
    assert "tests/testapp/tasks.py" in user and "always_flaky" in user
    assert "djqueue/" not in user
    assert page.locator(".djq-library-frames").count() >= 1
    _shot(page, "8-job-failed")
    if docs:
        page.screenshot(path=str(IMAGES / "job-failed.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#djq-job-actions button.djq-button-retry")
    assert Job.objects.get(pk=flaky.id).state == states.FAILURE  # asked, and refused
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#djq-job-actions button.djq-button-retry")
    page.wait_for_selector("ul.messagelist")
    assert "Queued the job again as a new attempt." in page.inner_text("ul.messagelist")
    wait_until(lambda: Job.objects.get(pk=flaky.id).attempt > 3, 30, "the retried job to run again")


# The job list ---------------------------------------------------------------------------


def _some_jobs(now: datetime.datetime) -> None:
    """A job in each state, as the list shows them."""
    ago = datetime.timedelta
    rows = [
        _ran(now - ago(seconds=4), tasks.add.name, states.SUCCESS, 0.012, args=[2, 3]),
        _ran(now - ago(seconds=40), tasks.echo.name, states.SUCCESS, 1.5, args=["ann@example.com"]),
        _ran(
            now - ago(minutes=3),
            tasks.fail.name,
            states.FAILURE,
            0.3,
            error_type="ConnectionError",
            error_message="Connection refused by db-7",
        ),
        _ran(now - ago(minutes=9), tasks.retry_then_succeed.name, states.RETRY, 0.2, args=[3]),
        _ran(now - ago(hours=2), tasks.sleep.name, states.REVOKED, None, args=[60]),
    ]
    rows.append(JobFactory.build(task_name=tasks.add.name, args=[40, 2], queue="mail"))
    rows.append(
        JobFactory.build(
            task_name=tasks.sleep.name,
            state=states.STARTED,
            args=[30],
            attempt=1,
            enqueued_at=now - ago(seconds=13),
            started_at=now - ago(seconds=12),
            worker="djqueue@web-1.4242.1a2b3c",
        )
    )
    Job.objects.bulk_create(rows)


def _ran(
    finished: datetime.datetime, task: str, state: str, runtime: float | None, **fields: Any
) -> Job:
    started = finished - datetime.timedelta(seconds=runtime or 0)
    return JobFactory.build(
        task_name=task,
        state=state,
        attempt=2 if state == states.RETRY else 1,
        enqueued_at=started - datetime.timedelta(seconds=1),
        started_at=started if runtime is not None else None,
        finished_at=finished if state != states.RETRY else None,
        worker="djqueue@web-1.4242.1a2b3c" if runtime is not None else "",
        **fields,
    )


def _failures(count: int, now: datetime.datetime) -> None:
    Job.objects.bulk_create(
        _ran(
            now - datetime.timedelta(seconds=n),
            tasks.fail.name,
            states.FAILURE,
            0.05,
            args=[n],
            error_type="ConnectionError",
            error_message=f"Connection refused by db-{n % 3}",
        )
        for n in range(count)
    )


def _top(page: Any, height: int) -> dict[str, int]:
    """The top of the page, as wide as it is: what a docs image shows."""
    return {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height}


def _shown_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#result_list button.djq-copy", "(buttons) => buttons.map((b) => b.dataset.copy)"
    )


@pytest.mark.django_db(transaction=True)
def test_job_list_fits_searches_and_retries_a_thousand_failed_jobs(
    page: Any, live_server: Any, django_user_model: Any
) -> None:
    now = timezone.now()
    _some_jobs(now)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    _log_in(page, live_server, django_user_model, "/admin/djqueue/job/")
    page.wait_for_selector("#result_list")

    # Dense and readable: it fits the screen beside the admin's menu and the filters
    # (the table needs no scrolling of its own), and no id or time breaks over two lines.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1920
    table = page.evaluate(
        """() => {
            const box = document.querySelector("#changelist .results");
            return {inner: box.scrollWidth, outer: box.clientWidth};
        }"""
    )
    assert table["inner"] <= table["outer"], table
    lines = page.eval_on_selector_all(
        "#result_list .djq-id code, #result_list time",
        "(cells) => cells.map((cell) => cell.getClientRects().length)",
    )
    assert lines and set(lines) == {1}
    assert "ago" in page.inner_text("#result_list")
    _shot(page, "6-job-list")
    if os.environ.get("DJQUEUE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(IMAGES / "job-list.png"), clip=_top(page, 560))

    # The copy button puts the whole id on the clipboard.
    first = _shown_ids(page)[0]
    page.click("#result_list button.djq-copy >> nth=0")
    assert page.evaluate("navigator.clipboard.readText()") == first

    # Search by an argument value, then by error text.
    page.fill("#searchbar", "ann@example.com")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=ann%40example.com**")
    echo = Job.objects.get(task_name=tasks.echo.name)
    assert _shown_ids(page) == [str(echo.id)]
    page.fill("#searchbar", "refused by DB-7")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=refused+by+DB-7**")
    failed = Job.objects.get(state=states.FAILURE)
    assert _shown_ids(page) == [str(failed.id)]

    # A batch retry of everything a filter matches: a thousand failed jobs.
    _failures(1000, now)
    page.goto(f"{live_server.url}/admin/djqueue/job/?state__exact=FAILURE&q=refused")
    assert "1,001 jobs" in page.inner_text("p.paginator")
    page.check("#action-toggle")
    page.click("div.actions span.question a")
    page.select_option("select[name=action]", "retry_failed_jobs")
    page.click("button[name=index]")
    assert page.inner_text("#djq-batch-count") == "1001"
    assert "matching the filter" in page.inner_text("#content-main")
    # More than one chunk (job_actions.CHUNK): the progress page asks for one after another
    # and says how far it got after each.
    steps = _requests_to(page, "/admin/djqueue/job/batch/step/")
    page.add_init_script(
        """new MutationObserver(() => {
            const status = document.getElementById("djq-batch-status");
            if (status) (window.djqSeen = window.djqSeen || []).push(status.textContent);
        }).observe(document, {subtree: true, childList: true, characterData: true});"""
    )
    page.click("#djq-batch-yes")
    page.wait_for_selector('#djq-batch[data-state="done"]', timeout=120_000)
    status = page.inner_text("#djq-batch-status")
    assert "1,001 of 1,001 job(s) read; queued again: 1,001." in status, status
    assert len(steps) == 3  # 500, 500 and the last one
    seen = page.evaluate("window.djqSeen")
    assert "Working: 500 of 1,001 job(s) read; queued again: 500." in seen, seen
    assert "Working: 1,000 of 1,001 job(s) read; queued again: 1,000." in seen, seen
    _shot(page, "7-batch-retry-done")
    if os.environ.get("DJQUEUE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(IMAGES / "batch-retry.png"), clip=_top(page, 330))
    assert Job.objects.filter(state=states.FAILURE).count() == 0
    assert Job.objects.filter(task_name=tasks.fail.name, state=states.PENDING).count() == 1001
