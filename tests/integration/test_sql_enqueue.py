"""djqueue_enqueue(): a job sent from psql (any SQL client) that a worker runs."""

from __future__ import annotations

import os
import subprocess

import pytest
from django.db import connection

import djqueue
from djqueue import codec, states, testing
from djqueue.models import Job


def psql(sql: str) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` with the psql command-line client against the test database."""
    settings = connection.settings_dict
    return subprocess.run(
        [
            "psql",
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            settings["HOST"],
            "-p",
            str(settings["PORT"]),
            "-U",
            settings["USER"],
            "-d",
            settings["NAME"],
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PGPASSWORD": settings["PASSWORD"] or ""},
    )


@pytest.mark.django_db(transaction=True)
def test_a_job_enqueued_from_psql_runs() -> None:
    done = psql("SELECT djqueue_enqueue('tests.testapp.tasks.add', '[20, 22]')")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    job = Job.objects.get(pk=job_id)
    assert (job.task_name, job.args, job.state, job.queue) == (
        "tests.testapp.tasks.add",
        [20, 22],
        states.PENDING,
        "default",
    )
    testing.run_pending()
    assert djqueue.AsyncResult(job_id).get() == 42


@pytest.mark.django_db(transaction=True)
def test_options_and_notification() -> None:
    done = psql(
        "LISTEN djqueue; SELECT djqueue_enqueue('tests.testapp.tasks.echo', '[1]', "
        "'{\"k\": 2}', 'mail', 7, now() + interval '1 hour')"
    )
    assert done.returncode == 0, done.stderr
    assert 'Asynchronous notification "djqueue" with payload "mail"' in done.stdout
    job = Job.objects.get(task_name="tests.testapp.tasks.echo")
    assert (job.queue, job.priority, job.kwargs) == ("mail", 7, {"k": 2})
    assert job.eta > job.enqueued_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("djqueue_enqueue('', '[]')", "task_name is required"),
        ("djqueue_enqueue('t', '{}')", "args must be a JSON array"),
        ("djqueue_enqueue('t', '[]', '[]')", "kwargs must be a JSON object"),
        ("djqueue_enqueue('t', '[]', '{}', 'q', 500)", "priority must be from -100 to 100"),
    ],
)
def test_bad_calls_are_refused_with_a_clear_error(call: str, message: str) -> None:
    done = psql(f"SELECT {call}")
    assert done.returncode != 0
    assert message in done.stderr
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rolled_back_enqueue_leaves_nothing_and_version_is_one() -> None:
    done = psql("BEGIN; SELECT djqueue_enqueue('tests.testapp.tasks.add', '[1, 1]'); ROLLBACK;")
    assert done.returncode == 0, done.stderr
    assert not Job.objects.exists()
    assert psql("SELECT djqueue_sql_version()").stdout.strip() == "1"


@pytest.mark.django_db(transaction=True)
def test_unknown_task_from_sql_fails_in_the_worker_with_its_name() -> None:
    job_id = psql("SELECT djqueue_enqueue('billing.tasks.nope')").stdout.strip()
    testing.run_pending()
    job = Job.objects.get(pk=job_id)
    assert job.state == states.FAILURE
    assert "unregistered task 'billing.tasks.nope'" in job.error_message


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "kind"),
    [
        ('[{"__djqueue__": "decimal", "v": "x"}]', "decimal"),
        ('[{"__djqueue__": "datetime", "v": "not a date"}]', "datetime"),
        ("[" * 3000 + "]" * 3000, "nested too deeply"),
    ],
)
def test_undecodable_arguments_from_sql_fail_their_job_and_the_row_still_loads(
    args: str, kind: str
) -> None:
    done = psql(f"SELECT djqueue_enqueue('tests.testapp.tasks.echo', '{args}')")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert codec.has_undecoded(Job.objects.get(pk=job_id).args)
    testing.run_pending()
    job = Job.objects.get(pk=job_id)
    assert job.state == states.FAILURE
    assert "the job's arguments cannot be decoded" in job.error_message
    assert kind in job.error_message
