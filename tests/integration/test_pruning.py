"""Pruning on a table that keeps growing: batches that walk forward, and rows another
transaction holds left for the next prune."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from djqueue.core import states
from djqueue.db import broker
from djqueue.db.models import Job
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_jobs_that_finished_at_the_same_moment_are_all_pruned_across_batches() -> None:
    # Batches continue from the last one's latest finish: ties on that moment must not
    # be stepped over.
    moment = timezone.now() - datetime.timedelta(days=2)
    JobFactory.create_batch(7, state=states.SUCCESS, finished_at=moment)
    JobFactory.create_batch(3, state=states.FAILURE, finished_at=moment + datetime.timedelta(1))
    recent = JobFactory(state=states.SUCCESS, finished_at=timezone.now())
    totals: list[int] = []
    assert broker.prune(86400, batch=2, progress=totals.append) == 10
    assert totals[-1] == 10 and len(totals) >= 5
    assert list(Job.objects.values_list("id", flat=True)) == [recent.id]


@pytest.mark.django_db(transaction=True)
def test_a_job_locked_elsewhere_is_left_for_the_next_prune(other_connection: Any) -> None:
    old = timezone.now() - datetime.timedelta(days=2)
    jobs = JobFactory.create_batch(4, state=states.SUCCESS, finished_at=old)
    held = jobs[1]
    # Another session (an admin's retry, say) holds one of the old rows.
    other_connection.execute("SELECT 1 FROM djqueue_job WHERE id = %s FOR UPDATE", [held.id])
    assert broker.prune(86400, batch=1) == 3
    assert list(Job.objects.values_list("id", flat=True)) == [held.id]
    other_connection.rollback()
    assert broker.prune(86400, batch=1) == 1
    assert not Job.objects.exists()


def test_the_job_table_is_vacuumed_at_ten_times_the_default_pace() -> None:
    # Migrations 0001 and 0026: vacuum early and fast on the table claims read.
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'djqueue_job'")
        options = set(cursor.fetchone()[0])
    assert {"autovacuum_vacuum_scale_factor=0.02", "autovacuum_vacuum_cost_limit=2000"} <= options
