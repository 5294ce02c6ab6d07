"""A job's earlier attempts (retried, lost, failed then retried) and retries per minute."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from djqueue.core import executor, states
from djqueue.db import broker
from djqueue.db.models import Job
from djqueue.integrations import testing
from djqueue.ops import stats
from tests.factories import StartedJobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_retries_keep_their_attempts_in_the_history() -> None:
    result = tasks.retry_then_succeed.delay(2)
    testing.run_pending()  # retry 1
    testing.run_pending()  # retry 2
    testing.run_pending()  # success
    job = Job.objects.get(pk=result.id)
    assert job.state == states.SUCCESS
    assert [(h["attempt"], h["outcome"], h["error_type"]) for h in job.history] == [
        (1, "RETRY", "ConnectionError"),
        (2, "RETRY", "ConnectionError"),
    ]
    assert job.history[0]["error_message"] == "try 0"
    assert job.retried_at is not None


def test_a_lost_attempt_is_kept() -> None:
    lost = StartedJobFactory(worker="gone-worker")
    broker.rescue()
    job = Job.objects.get(pk=lost.id)
    assert [(h["attempt"], h["outcome"], h["worker"]) for h in job.history] == [
        (1, "LOST", "gone-worker")
    ]


def test_a_failed_attempt_retried_by_hand_is_kept() -> None:
    result = tasks.fail.delay("first")
    testing.run_pending()
    broker.retry_failed([result.id])
    job = Job.objects.get(pk=result.id)
    assert [(h["outcome"], h["error_message"]) for h in job.history] == [("FAILURE", "first")]


def test_success_rows_get_no_history() -> None:
    result = tasks.add.delay(1, 2)
    jobs = broker.claim(["default"], 10, "w", 30.0, limited=True)
    broker.finish([executor.execute(job) for job in jobs])
    job = Job.objects.get(pk=result.id)
    assert (job.history, job.retried_at) == (None, None)


def test_retries_per_minute_for_the_dashboard() -> None:
    tasks.retry_then_succeed.delay_many([(5,)] * 3)
    testing.run_pending()
    minutes = stats.throughput(hours=1)
    assert sum(m.retried for m in minutes) == 3
    assert minutes[-1].at <= timezone.now()
    assert minutes[-1].at > timezone.now() - datetime.timedelta(minutes=2)


def test_job_page_lists_every_attempt_escaped(admin_client: Any) -> None:
    result = tasks.retry_then_succeed.delay(1)
    testing.run_pending()
    Job.objects.filter(pk=result.id).update(
        history=[{"attempt": 1, "outcome": "RETRY", "error_message": "<b>bad</b>"}]
    )
    testing.run_pending()
    page = admin_client.get(reverse("admin:djqueue_job_change", args=[result.id])).content
    text = page.decode()
    assert "<th>attempt</th>" in text
    assert "&lt;b&gt;bad&lt;/b&gt;" in text and "<b>bad</b>" not in text
    last = text[text.rindex("<tr data-outcome=") :]
    assert 'data-outcome="SUCCESS"' in last and "<td>2</td>" in last
