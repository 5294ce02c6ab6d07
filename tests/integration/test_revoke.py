"""revoke(terminate=True): the request kept in the row, announced, and honoured by claims."""

import datetime
from typing import Any

import pytest
from django.utils import timezone

import djqueue
from djqueue.core import executor, states
from djqueue.db import broker
from djqueue.db.models import Job
from tests.factories import StartedJobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_revoking_a_running_job_needs_terminate() -> None:
    running = StartedJobFactory(lease_expires_at=timezone.now() + datetime.timedelta(minutes=1))
    assert djqueue.AsyncResult(running.id).revoke() is False
    assert Job.objects.get(pk=running.id).revoke_requested_at is None
    assert djqueue.AsyncResult(running.id).revoke(terminate=True) is True
    row = Job.objects.get(pk=running.id)
    assert row.revoke_requested_at is not None
    assert row.state == states.STARTED  # its worker stops it and writes REVOKED


def test_revoking_a_finished_job_does_nothing() -> None:
    result = tasks.add.delay(1, 2)
    jobs = broker.claim(["default"], 1, "w", 30.0, limited=True)
    broker.finish([executor.execute(job) for job in jobs])
    assert result.revoke(terminate=True) is False
    assert result.state == states.SUCCESS


@pytest.mark.django_db(transaction=True)
def test_the_request_is_announced_to_workers(other_connection: Any) -> None:
    running = StartedJobFactory(lease_expires_at=timezone.now() + datetime.timedelta(minutes=1))
    other_connection.autocommit = True
    other_connection.execute("LISTEN djqueue_revoke")
    djqueue.revoke(running.id, terminate=True)
    notes = list(other_connection.notifies(timeout=2, stop_after=1))
    assert [n.payload for n in notes] == [str(running.id)]


def test_heartbeat_reports_requests_a_worker_missed() -> None:
    asked = StartedJobFactory(worker="me", lease_expires_at=timezone.now())
    other = StartedJobFactory(worker="me", lease_expires_at=timezone.now())
    broker.revoke(asked.id, terminate=True)
    held = [(asked.id, 1), (other.id, 1)]
    assert broker.renew_leases("me", 30, held) == {asked.id: True, other.id: False}


def test_a_rescued_job_with_a_request_is_revoked_not_run() -> None:
    lost = StartedJobFactory(task_name="tests.testapp.tasks.add")
    broker.revoke(lost.id, terminate=True)
    broker.rescue()  # its worker died: back to PENDING, the request stays
    [job] = broker.claim(["default"], 10, "w2", 30.0, limited=True)
    assert job.revoked
    outcome = executor.execute(job)
    broker.finish([outcome])
    row = Job.objects.get(pk=lost.id)
    assert row.state == states.REVOKED
    assert row.error_message == "revoked before it started"


def test_cli_revoke_terminate(capsys: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    running = StartedJobFactory(lease_expires_at=timezone.now() + datetime.timedelta(minutes=1))
    out = StringIO()
    call_command("djqueue", "revoke", str(running.id), stdout=out)
    assert "not revoked (it is STARTED; add --terminate to stop it)" in out.getvalue()
    out = StringIO()
    call_command("djqueue", "revoke", "--terminate", str(running.id), stdout=out)
    assert f"{running.id}: asked to stop" in out.getvalue()
