"""The admin's overview and its JSON endpoint: figures from the time series, live queue
depths, alerts, links to the filtered job list, and who may read it."""

from __future__ import annotations

import datetime
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from djqueue.core import states
from djqueue.db import broker, series
from djqueue.db.models import Worker
from djqueue.ops import durations, stats
from tests.factories import JobFactory, StartedJobFactory

pytestmark = pytest.mark.django_db

MINUTE = datetime.timedelta(minutes=1)
DATA = "admin:djqueue_overview_data"


_START: list[datetime.datetime] = []


@pytest.fixture(autouse=True)
def _one_clock_per_test() -> None:
    """Every ``_minute()`` of a test counts from the same minute, even if the clock
    passes into the next one while the test runs."""
    _START[:] = [timezone.now().replace(second=0, microsecond=0)]


def _minute(ago: int) -> datetime.datetime:
    return _START[0] - ago * MINUTE


def _ended(at: datetime.datetime, state: str = states.SUCCESS, **extra: Any) -> Any:
    return JobFactory(
        state=state,
        attempt=1,
        eta=at - datetime.timedelta(seconds=1),
        started_at=at - datetime.timedelta(seconds=0.5),
        finished_at=at,
        **extra,
    )


def _data(client: Client, **params: str) -> dict[str, Any]:
    response = client.get(reverse(DATA), params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def _user(django_user_model: Any, *codenames: str) -> Client:
    user = django_user_model.objects.create_user("someone", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_figures_and_charts_come_from_the_rolled_up_minutes(admin_client: Client) -> None:
    for _ in range(3):
        _ended(_minute(5) + datetime.timedelta(seconds=10))
    _ended(_minute(4) + datetime.timedelta(seconds=10), states.FAILURE, task_name="t.fails")
    series.rollup()
    data = _data(admin_client)
    outcomes = {o["name"]: o["count"] for o in data["figures"]["outcomes"]}
    assert outcomes == {states.SUCCESS: 3, states.FAILURE: 1}
    assert data["figures"]["failure_rate"] == pytest.approx(0.25)
    assert data["figures"]["runtime"]["p50"] == pytest.approx(0.5, rel=0.5)
    throughput = {s["name"]: s for s in data["throughput"]["series"]}
    assert sum(throughput[states.SUCCESS]["values"]) == 3
    assert len(data["throughput"]["bins"]) == 60  # an hour, by minute
    tasks = {t["task"]: t for t in data["tasks"]}
    assert tasks["t.fails"]["failed"] == 1 and tasks["t.fails"]["failure_rate"] == 1.0
    week = _data(admin_client, range="week")
    # A week by hour, from an hour: 168 bins, and one partial unless it ends on an hour.
    assert week["range"] == "week" and len(week["throughput"]["bins"]) in (168, 169)
    assert week["start"].endswith(":00:00+00:00")
    week_outcomes = {o["name"]: o["count"] for o in week["figures"]["outcomes"]}
    assert week_outcomes == outcomes
    week_series = {s["name"]: sum(s["values"]) for s in week["throughput"]["series"]}
    assert week_series == outcomes
    assert _data(admin_client, range="nonsense")["range"] == "hour"


def test_every_link_opens_the_jobs_it_counts(admin_client: Client) -> None:
    _ended(_minute(5), task_name="t.one")
    _ended(_minute(5), states.FAILURE, task_name="t.one")
    _ended(_minute(8), states.FAILURE, task_name="t.two", queue="mail")
    series.rollup()
    data = _data(admin_client)

    def listed(url: str) -> set[str]:
        page = admin_client.get(url)
        assert page.status_code == 200, url
        return {job.task_name for job in page.context["cl"].result_list}

    failed = next(o for o in data["figures"]["outcomes"] if o["name"] == states.FAILURE)
    assert listed(failed["url"]) == {"t.one", "t.two"}
    one = next(t for t in data["tasks"] if t["task"] == "t.one")
    assert listed(one["failed_url"]) == {"t.one"}
    assert listed(one["ended_url"]) == {"t.one"}
    # A bar of the chart: its series' link with the bin's window, as the page adds it.
    failures = next(s for s in data["throughput"]["series"] if s["name"] == states.FAILURE)
    bins = [datetime.datetime.fromisoformat(at) for at in data["throughput"]["bins"]]
    index = bins.index(_minute(8))
    assert failures["values"][index] == 1 and failures["field"] == "finished_at"
    url = urlparse(failures["url"])
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    query["finished_at__gte"] = bins[index].isoformat()
    query["finished_at__lt"] = (bins[index] + MINUTE).isoformat()
    bar = admin_client.get(url.path, query)
    assert [job.task_name for job in bar.context["cl"].result_list] == ["t.two"]
    # The window shows in the "finished" filter, to the second.
    shown = timezone.localtime(bins[index]).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{shown} to " in bar.content.decode()


def test_alerts_say_what_needs_a_human(admin_client: Client, settings: Any) -> None:
    settings.DJQUEUE = {**settings.DJQUEUE, "ALERT_WAIT_SECONDS": 60}
    long_ago = timezone.now() - datetime.timedelta(minutes=10)
    JobFactory.create_batch(2, queue="orphan", eta=long_ago)
    JobFactory(queue="mail", eta=long_ago)
    broker.set_paused("mail", True)
    broker.register_worker("alive", "host", 1, "threads", 4, ["default"])
    broker.register_worker("gone", "host", 2, "threads", 4, ["default"])
    Worker.objects.filter(name="gone").update(last_heartbeat=long_ago)
    StartedJobFactory(worker="gone")
    for n in range(12):
        _ended(_minute(3) + datetime.timedelta(seconds=n), states.FAILURE, task_name="t.bad")
    series.rollup()
    alerts = {alert["kind"]: alert for alert in _data(admin_client)["alerts"]}
    assert set(alerts) == {"no-worker", "paused", "lost-worker", "failure-spike", "long-wait"}
    assert "'orphan': 2 job(s) due" in alerts["no-worker"]["text"]
    assert "'mail' is paused" in alerts["paused"]["text"]
    assert (
        "'gone'" in alerts["lost-worker"]["text"]
        and "holds 1 job(s)" in alerts["lost-worker"]["text"]
    )
    assert "'t.bad': 12 of 12" in alerts["failure-spike"]["text"]
    # Lengths of time in the console's words; moments to the second, with the zone.
    assert "a job due 10 min ago" in alerts["long-wait"]["text"]
    assert "(the threshold is 1 min)" in alerts["long-wait"]["text"]
    assert durations.moment(long_ago) in alerts["lost-worker"]["text"]
    assert alerts["no-worker"]["level"] == "error"
    listed = admin_client.get(alerts["lost-worker"]["url"]).context["cl"].result_list
    assert [job.worker for job in listed] == ["gone"]
    orphans = admin_client.get(alerts["no-worker"]["url"]).context["cl"].result_list
    assert {job.queue for job in orphans} == {"orphan"} and len(orphans) == 2


def test_no_alert_when_all_is_well(admin_client: Client) -> None:
    broker.register_worker("alive", "host", 1, "threads", 4, ["default"])
    JobFactory()
    _ended(_minute(3))
    series.rollup()
    assert _data(admin_client)["alerts"] == []


def test_queue_depths_are_live(admin_client: Client) -> None:
    JobFactory.create_batch(3, queue="mail", eta=timezone.now() - MINUTE)
    StartedJobFactory(queue="mail")
    queues = {q["queue"]: q for q in _data(admin_client)["queues"]}
    assert (queues["mail"]["waiting"], queues["mail"]["running"]) == (3, 1)


def test_queue_depths_count_limited_and_other_waiting_jobs_together() -> None:
    # Read apart (each through its own partial index), added up per queue.
    JobFactory.create_batch(2, queue="mail", eta=timezone.now() - 2 * MINUTE)
    JobFactory(queue="mail", gated=True, eta=timezone.now() - 5 * MINUTE)
    JobFactory(queue="mail", gated=True, eta=timezone.now() + 5 * MINUTE)
    JobFactory(queue="limited", gated=True, eta=timezone.now() - MINUTE)
    depths = {depth.queue: depth for depth in stats.queue_depths()}
    assert (depths["mail"].waiting, depths["mail"].scheduled) == (3, 1)
    oldest = depths["mail"].oldest_wait
    assert oldest is not None and oldest >= 5 * MINUTE
    assert (depths["limited"].waiting, depths["limited"].scheduled) == (1, 0)


def test_the_data_needs_the_view_permission_on_jobs(client: Client, django_user_model: Any) -> None:
    anonymous = client.get(reverse(DATA))
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    staff = _user(django_user_model)
    refused = staff.get(reverse(DATA))
    assert refused.status_code == 403
    assert json.loads(refused.content) == {"error": "You may not view jobs."}


def test_workers_are_shown_only_to_those_who_may_view_them(django_user_model: Any) -> None:
    broker.register_worker("gone", "host", 2, "threads", 4, ["default"])
    Worker.objects.filter(name="gone").update(last_heartbeat=timezone.now() - 10 * MINUTE)
    StartedJobFactory(worker="gone")
    viewer = _user(django_user_model, "view_job")
    data = _data(viewer)
    assert data["workers"] is None
    assert "lost-worker" not in {alert["kind"] for alert in data["alerts"]}
    Permission.objects.get(codename="view_worker").user_set.add(
        django_user_model.objects.get(username="someone")
    )
    assert _data(viewer)["workers"] == {
        "live": 0,
        "url": reverse("admin:djqueue_worker_changelist"),
    }


def test_the_page_carries_its_first_figures_escaped(admin_client: Client) -> None:
    JobFactory(queue="<b>q</b>", eta=timezone.now() - MINUTE)
    response = admin_client.get(reverse("admin:djqueue_dashboard"))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="djq-initial"' in page and "chart.umd.min.js" in page
    assert "<b>q</b>" not in page and "\\u003Cb\\u003Eq\\u003C/b\\u003E" in page
    assert f'data-url="{reverse(DATA)}"' in page
