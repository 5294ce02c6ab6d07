"""The admin's job list: its columns, filters, the overview's links into it, its search
box, and a count that stops at its limit."""

from __future__ import annotations

import contextlib
import datetime
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from djqueue.core import ids, states
from djqueue.db import broker, counts
from djqueue.db.models import Job, JobMinute, QueueMinute
from djqueue.ops import job_list, job_window, links
from tests.factories import JobFactory, StartedJobFactory

pytestmark = pytest.mark.django_db
LIST = "admin:djqueue_job_changelist"


def _shown(response: Any) -> set[str]:
    """The ids of the jobs a list page shows (from their copy buttons)."""
    assert response.status_code == 200, response
    return set(re.findall(r'data-copy="([0-9a-f-]{36})"', response.content.decode()))


def test_a_row_shows_a_short_id_with_copy_times_to_the_second_and_runtime(
    admin_client: Any,
) -> None:
    started = timezone.now() - datetime.timedelta(minutes=5, seconds=3)
    job = JobFactory(
        state=states.SUCCESS,
        attempt=2,
        started_at=started,
        finished_at=started + datetime.timedelta(seconds=2.5),
        worker="w@host.1",
    )
    page = admin_client.get(reverse(LIST)).content.decode()
    full = str(job.id)
    assert f"<code>…{full[-12:]}</code>" in page
    assert f'data-copy="{full}"' in page
    assert reverse("admin:djqueue_job_change", args=[job.id]) in page
    assert f">{timezone.localtime(started).strftime('%H:%M:%S')}</time>" in page
    assert timezone.localtime(started).isoformat(sep=" ") in page  # the exact moment, on hover
    assert "5 min ago" in page
    assert "2.5 s" in page
    assert 'style="background-color: #2e7d32">SUCCESS<' in page
    assert '<td class="field-attempt">2</td>' in page
    assert "djqueue/job_list.js" in page and "djqueue/job_list.css" in page


def test_times_show_the_date_when_not_today_and_the_year_when_not_this_one() -> None:
    now = datetime.datetime(2026, 12, 1, 12, 0, 5, tzinfo=datetime.UTC)
    assert ">12:00:00</time>" in job_list.when(now - datetime.timedelta(seconds=5), now)
    assert ">11-30 12:00:05</time>" in job_list.when(now - datetime.timedelta(days=1), now)
    assert ">2025-12-01 12:00:05</time>" in job_list.when(now.replace(year=2025), now)
    assert "1 d ago" in job_list.when(now - datetime.timedelta(days=1), now)
    assert job_list.when(None) == "-"


def test_a_running_job_shows_its_progress_under_its_state(admin_client: Any) -> None:
    StartedJobFactory(progress={"current": 3, "total": 8, "message": "<b>rows</b>"})
    page = admin_client.get(reverse(LIST)).content.decode()
    assert '<progress value="3" max="8"></progress> 3/8' in page
    assert "<b>rows</b>" not in page


def test_durations_and_ages_read_well() -> None:
    assert job_list.duration(0.0123) == "12 ms"
    assert job_list.duration(2.5) == "2.5 s"
    assert job_list.duration(42) == "42 s"
    assert job_list.duration(303) == "5 min 3 s"
    assert job_list.duration(7500) == "2 h 5 min"
    assert job_list.duration(3 * 86400 + 4 * 3600) == "3 d 4 h"
    assert job_list.ago(0.4) == "0 s ago"
    assert job_list.ago(303) == "5 min ago"
    assert job_list.ago(-90) == "in 1 min"


def test_filters_by_state_queue_task_worker_and_window(admin_client: Any) -> None:
    failed = JobFactory(state=states.FAILURE, queue="mail", task_name="tests.testapp.tasks.fail")
    mine = StartedJobFactory(worker="w@host.1")
    old = JobFactory(enqueued_at=timezone.now() - datetime.timedelta(days=3))
    url = reverse(LIST)
    assert _shown(admin_client.get(url, {"state__exact": "FAILURE"})) == {str(failed.id)}
    assert _shown(admin_client.get(url, {"queue__exact": "mail"})) == {str(failed.id)}
    assert _shown(admin_client.get(url, {"task": "tests.testapp.tasks.fail"})) == {str(failed.id)}
    assert _shown(admin_client.get(url, {"worker__exact": "w@host.1"})) == {str(mine.id)}
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    recent = _shown(admin_client.get(url, {"enqueued_at__gte": since}))
    assert str(old.id) not in recent and str(failed.id) in recent


def test_filters_offer_queues_workers_and_tasks_without_reading_the_table(
    admin_client: Any,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    broker.register_worker("w@host.1", "host", 1, "threads", 4, ["default", "mail"])
    broker.set_paused("reports", True)
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(reverse(LIST)).content.decode()
    for offered in ("?queue__exact=mail", "?queue__exact=reports", "?worker__exact=w%40host.1"):
        assert offered in page, offered
    assert "?task=tests.testapp.tasks.add" in page
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"]]
    # A link may name a queue the filter does not offer: it is shown as chosen.
    chosen = admin_client.get(reverse(LIST), {"queue__exact": "elsewhere"}).content.decode()
    assert 'class="selected"' in chosen and "elsewhere" in chosen


def test_the_queue_filter_offers_the_queues_the_time_series_saw_lately(admin_client: Any) -> None:
    minute = timezone.now().replace(second=0, microsecond=0)
    QueueMinute.objects.create(minute=minute, queue="backlog", waiting=3, scheduled=0, running=0)
    QueueMinute.objects.create(minute=minute, queue="empty", waiting=0, scheduled=0, running=0)
    JobMinute.objects.create(
        minute=minute, queue="ended", task_name="t", outcome="SUCCESS", count=1
    )
    long_ago = minute - job_list.RECENT_QUEUES - datetime.timedelta(minutes=1)
    JobMinute.objects.create(
        minute=long_ago, queue="gone", task_name="t", outcome="SUCCESS", count=1
    )
    # Jobs the series has not sampled yet: the filter does not read the job table.
    JobFactory(queue="unsampled")
    page = admin_client.get(reverse(LIST)).content.decode()
    offered = set(re.findall(r"\?queue__exact=([\w-]+)", page))
    assert {"backlog", "ended"} <= offered
    assert not offered & {"empty", "gone", "unsampled"}


def test_the_overviews_links_land_on_lists_filtered_to_what_they_count(admin_client: Any) -> None:
    now = timezone.now()
    failed = JobFactory(
        state=states.FAILURE, queue="mail", finished_at=now - datetime.timedelta(minutes=1)
    )
    JobFactory(state=states.FAILURE, finished_at=now - datetime.timedelta(hours=2))
    JobFactory(state=states.SUCCESS, finished_at=now)
    waiting = JobFactory(queue="mail")
    held = StartedJobFactory(worker="w@host.1")
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(seconds=1)
    cases = {
        links.outcome(states.FAILURE, start, end): {failed.id},
        links.outcome(states.FAILURE, start, end, queue__exact="mail"): {failed.id},
        links.waiting("mail"): {waiting.id},
        links.held_by("w@host.1"): {held.id},
    }
    for url, expected in cases.items():
        assert _shown(admin_client.get(url)) == {str(i) for i in expected}, url


def test_search_box_finds_by_argument_value_and_error_text(admin_client: Any) -> None:
    called = JobFactory(args=["ann@example.com", 7])
    failed = JobFactory(state=states.FAILURE, error_message="Connection refused by db-7")
    JobFactory(args=[1])
    url = reverse(LIST)
    assert _shown(admin_client.get(url, {"q": "ann@example.com"})) == {str(called.id)}
    assert _shown(admin_client.get(url, {"q": "refused by"})) == {str(failed.id)}
    assert _shown(admin_client.get(url, {"q": str(failed.id)[:13]})) >= {str(failed.id)}


def test_a_filtered_list_counts_up_to_its_limit(
    admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_list, "COUNT_LIMIT", 5)
    JobFactory.create_batch(7, state=states.FAILURE)
    JobFactory.create_batch(3, state=states.SUCCESS)
    url = reverse(LIST)
    many = admin_client.get(url, {"state__exact": "FAILURE"}).content.decode()
    assert "5+ jobs" in many and "narrow the filter" in many
    assert "Select all 5+ jobs matching the filter" in many
    few = admin_client.get(url, {"state__exact": "SUCCESS"}).content.decode()
    assert "3 jobs" in few and "narrow the filter" not in few


def test_names_and_ids_from_rows_are_escaped(admin_client: Any) -> None:
    JobFactory(task_name="<b>t</b>", queue="<i>q</i>", worker="<s>w</s>", state=states.STARTED)
    page = admin_client.get(reverse(LIST)).content.decode()
    assert "<b>t</b>" not in page and "&lt;b&gt;t&lt;/b&gt;" in page
    assert "<i>q</i>" not in page and "<s>w</s>" not in page


def test_a_filter_no_index_serves_looks_at_a_window_of_the_newest_jobs(
    admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a big table: every filtered page costs more than the list reads at once.
    monkeypatch.setattr(job_window, "COSTLY", -1.0)
    monkeypatch.setattr(job_window, "WINDOW", 3)
    old = JobFactory(task_name="t.rare")
    others = JobFactory.create_batch(4, task_name="t.common")
    new = JobFactory(task_name="t.rare")
    url = reverse(LIST)
    page = admin_client.get(url, {"task": "t.rare"})
    assert _shown(page) == {str(new.id)}
    text = page.content.decode()
    assert "matches among the 3 newest jobs" in text
    older = re.search(r'href="(\?[^"]*before=[^"]*)"', text)
    assert older is not None
    # The window before: the three jobs sent before the oldest of this one.
    earlier = admin_client.get(url + older.group(1).replace("&amp;", "&"))
    assert _shown(earlier) == {str(old.id)}
    assert f"sent before …{ids.short(others[2].id)}" in earlier.content.decode()


def test_a_page_that_runs_out_of_time_is_read_again_in_a_window(
    admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_window, "WINDOW", 2)
    real = counts.time_limit

    @contextlib.contextmanager
    def no_time(using: str, milliseconds: int) -> Iterator[counts.Limit]:
        # The page's statements, then one that runs out of the time they all had.
        with real(using, 50) as limit:
            yield limit
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(2)")

    monkeypatch.setattr(counts, "time_limit", no_time)
    JobFactory.create_batch(3, queue="mail")
    page = admin_client.get(reverse(LIST), {"queue__exact": "mail"})
    assert len(_shown(page)) == 2
    assert "matches among the 2 newest jobs" in page.content.decode()


def test_a_time_limit_cancels_a_long_statement_and_is_set_back() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    with counts.time_limit(connection.alias, 20) as limit, connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")
    assert limit.exceeded
    with counts.time_limit(connection.alias, 5000) as quick, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert not quick.exceeded
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == before


def test_a_count_that_would_read_too_much_is_the_databases_estimate(
    admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_window, "COSTLY", -1.0)
    monkeypatch.setattr(job_list, "COUNT_LIMIT", 0)
    JobFactory.create_batch(2, state=states.FAILURE)
    page = admin_client.get(reverse(LIST), {"state__exact": "FAILURE"}).content.decode()
    assert re.search(r"about [\d,]+ jobs", page)
    assert "the database's estimate" in page


def test_pages_go_as_far_as_the_count_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_list, "COUNT_LIMIT", 4)
    JobFactory.create_batch(7)
    paginator = job_list.JobPaginator(Job.objects.filter(state=states.PENDING).order_by("-id"), 2)
    assert paginator.num_pages == 2


@pytest.mark.parametrize("state", ["FAILURE", "REVOKED", "REJECTED", "IGNORED", "RETRY"])
def test_a_state_most_jobs_never_reach_is_listed_through_its_own_index(state: str) -> None:
    # The plan a big table gets (a table this small would be read whole, or its few
    # rows of the state gathered and sorted, depending on what earlier tests left in
    # its statistics).
    page = Job.objects.filter(state=state).order_by("-id")[:100]
    statement, params = page.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {statement}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "djqueue_job_rare_states" in plan and "Sort" not in plan, plan


def test_an_enqueued_window_long_ago_is_looked_for_where_it_ends(
    admin_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_window, "COSTLY", -1.0)
    monkeypatch.setattr(job_window, "WINDOW", 3)
    start = timezone.now().replace(microsecond=0) - datetime.timedelta(days=10)
    end = start + datetime.timedelta(hours=1)
    # Jobs sent in that hour: their time-ordered ids come just before its end's.
    boundary = job_window.sent_before(end.isoformat())
    assert boundary is not None
    sent = start + datetime.timedelta(minutes=10)
    old = [JobFactory(id=uuid.UUID(int=boundary.int - n), enqueued_at=sent) for n in (1, 2, 3)]
    JobFactory.create_batch(5)  # sent now: the newest window holds none of the old ones
    page = admin_client.get(
        reverse(LIST), {"enqueued_at__gte": start.isoformat(), "enqueued_at__lt": end.isoformat()}
    )
    assert _shown(page) == {str(job.id) for job in old}
    shown_end = timezone.localtime(end + job_window.CLOCK_SLACK).strftime("%Y-%m-%d %H:%M:%S")
    assert f"sent before {shown_end}" in page.content.decode()
