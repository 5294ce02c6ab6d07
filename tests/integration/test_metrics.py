"""Prometheus metrics from the database: counters and histograms that only grow,
bounded labels, live gauges, and the Grafana dashboard in docs naming only real metrics."""

from __future__ import annotations

import datetime
import json
import pathlib
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from djqueue.core import states
from djqueue.db import broker, series
from djqueue.db.models import Job, JobMinute, JobTotal
from djqueue.ops import metrics
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

ADD = "tests.testapp.tasks.add"
FAIL = "tests.testapp.tasks.fail"
DASHBOARD = pathlib.Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"


def _ended(minutes_ago: int, runtime: float, task: str = ADD, state: str = states.SUCCESS) -> Any:
    at = timezone.now().replace(second=0, microsecond=0) - datetime.timedelta(
        minutes=minutes_ago, seconds=-10
    )
    started = at - datetime.timedelta(seconds=runtime)
    return JobFactory(
        task_name=task,
        state=state,
        attempt=1,
        eta=started - datetime.timedelta(seconds=0.5),
        started_at=started,
        finished_at=at,
    )


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/tasks/metrics/")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def test_counters_and_histograms_from_rolled_up_minutes(admin_client: Client) -> None:
    for _ in range(3):
        _ended(5, runtime=0.3)
    _ended(4, runtime=7.0, task=FAIL, state=states.FAILURE)
    series.rollup()
    samples = scrape(admin_client)
    labels = {"queue": "default", "task": ADD}
    assert value(samples, "djqueue_jobs_finished_total", outcome="SUCCESS", **labels) == 3
    failed = {"queue": "default", "task": FAIL, "outcome": "FAILURE"}
    assert value(samples, "djqueue_jobs_finished_total", **failed) == 1
    assert value(samples, "djqueue_job_runtime_seconds_count", **labels) == 3
    assert value(samples, "djqueue_job_runtime_seconds_bucket", le="0.2", **labels) == 0
    assert value(samples, "djqueue_job_runtime_seconds_bucket", le="0.5", **labels) == 3
    assert value(samples, "djqueue_job_runtime_seconds_bucket", le="+Inf", **labels) == 3
    assert value(samples, "djqueue_job_runtime_seconds_sum", **labels) == pytest.approx(0.9)
    assert value(samples, "djqueue_job_wait_seconds_bucket", le="1.0", **labels) == 3
    # The mark is the last closed minute (15 s settled).
    assert value(samples, "djqueue_metrics_lag_seconds") < 60 + 15 + 30


def test_counters_never_go_down_when_jobs_and_minutes_are_pruned(admin_client: Client) -> None:
    for _ in range(4):
        _ended(6, runtime=1.5)
    series.rollup()
    before = scrape(admin_client)
    # Jobs pruned, rollup rows pruned, the same minutes rolled up again.
    Job.objects.all().delete()
    JobMinute.objects.all().delete()
    series.rollup()
    series.rewrite_minutes(
        timezone.now() - datetime.timedelta(minutes=10),
        timezone.now() - datetime.timedelta(minutes=2),
    )
    series.rollup()
    after = scrape(admin_client)
    counters = [key for key in before if key[0].endswith(("_total", "_bucket", "_count", "_sum"))]
    assert counters
    for key in counters:
        assert after[key] >= before[key], key


def test_each_minute_is_added_to_the_counters_once(admin_client: Client) -> None:
    _ended(3, runtime=0.1)
    for _ in range(3):
        series.rollup()
    labels = {"queue": "default", "task": ADD, "outcome": "SUCCESS"}
    assert value(scrape(admin_client), "djqueue_jobs_finished_total", **labels) == 1


def test_label_values_are_capped_first_come_first_kept(admin_client: Client, settings: Any) -> None:
    _ended(6, runtime=0.1, task=ADD)
    series.rollup()
    settings.DJQUEUE = {**settings.DJQUEUE, "METRICS_MAX_LABEL_VALUES": 1}
    # A task that appeared later (its total made after the first one's).
    JobTotal.objects.create(queue="default", task_name=FAIL, outcome="SUCCESS", count=2)
    samples = scrape(admin_client)
    done = {
        dict(labels)["task"]: count
        for (name, labels), count in samples.items()
        if name == "djqueue_jobs_finished_total"
    }
    assert done == {ADD: 1, metrics.OTHER: 2}


def test_task_labels_can_be_turned_off(admin_client: Client, settings: Any) -> None:
    _ended(5, runtime=0.1, task=ADD)
    _ended(5, runtime=0.1, task=FAIL)
    series.rollup()
    settings.DJQUEUE = {**settings.DJQUEUE, "METRICS_TASK_LABELS": False}
    samples = scrape(admin_client)
    assert value(samples, "djqueue_jobs_finished_total", queue="default", outcome="SUCCESS") == 2
    assert not any("task" in dict(labels) for _, labels in samples)


def test_gauges_read_live(admin_client: Client) -> None:
    from tests.testapp import tasks

    tasks.add.delay_many([(1, 1), (2, 2)])
    broker.set_paused("mail", True)
    broker.register_worker("host.1", "host", 1, "threads", 4, ["default"])
    samples = scrape(admin_client)
    assert value(samples, "djqueue_jobs", queue="default", state="waiting") == 2
    assert value(samples, "djqueue_queue_paused", queue="mail") == 1
    assert value(samples, "djqueue_workers") == 1
    assert ("djqueue_oldest_waiting_seconds", (("queue", "default"),)) in samples


def test_grafana_dashboard_names_only_metrics_that_exist(admin_client: Client) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert queries
    named = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for query in queries
        for name in re.findall(r"\bdjqueue_[a-z_]+", query)
    }
    assert named <= set(metrics.NAMES), named - set(metrics.NAMES)
    # Every family is described at each scrape, with samples or not.
    text = admin_client.get("/tasks/metrics/").content.decode()
    exposed = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        if family.type == "counter":
            exposed.add(f"{family.name}_total")
    assert named <= exposed, named - exposed
    assert exposed >= set(metrics.NAMES), set(metrics.NAMES) - exposed
