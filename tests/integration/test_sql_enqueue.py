"""djqueue_enqueue(): a job sent from psql (any SQL client) that a worker runs."""

from __future__ import annotations

import os
import subprocess

import pytest
from django.db import connection

import djqueue
from djqueue.core import codec, states
from djqueue.db.models import Job
from djqueue.integrations import testing


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


def sized(size: int) -> str:
    """A call whose args and kwargs are ``size`` bytes of JSON as PostgreSQL writes it."""
    # '["xx…x"]' plus '{}': six bytes around the string.
    return (
        f"djqueue_enqueue('tests.testapp.tasks.echo', jsonb_build_array(repeat('x', {size - 6})))"
    )


@pytest.mark.django_db(transaction=True)
def test_arguments_up_to_the_size_cap_are_accepted_and_larger_ones_refused() -> None:
    assert psql(f"SELECT {sized(1_048_576)}").returncode == 0
    refused = psql(f"SELECT {sized(1_048_577)}")
    assert refused.returncode != 0
    assert (
        "args and kwargs are 1048577 bytes as JSON, over the limit of 1048576 bytes; "
        "store large data elsewhere (a table row, a file) and pass its key"
    ) in refused.stderr
    assert "djqueue_max_payload_bytes()" in refused.stderr  # the hint: where the limit is
    assert Job.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_hundred_megabyte_argument_is_refused_and_not_echoed_back() -> None:
    refused = psql(f"SELECT {sized(100_000_000)}")
    assert "over the limit of 1048576 bytes" in refused.stderr
    assert len(refused.stderr) < 2000
    not_a_list = psql("SELECT djqueue_enqueue('t', jsonb_build_object('a', repeat('x', 10000000)))")
    assert 'args must be a JSON array, not {"a": "xxx' in not_a_list.stderr
    assert len(not_a_list.stderr) < 2000
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_size_cap_is_what_djqueue_max_payload_bytes_returns() -> None:
    assert psql("SELECT djqueue_max_payload_bytes()").stdout.strip() == "1048576"
    lowered = psql(
        "BEGIN; CREATE OR REPLACE FUNCTION djqueue_max_payload_bytes() RETURNS bigint "
        "LANGUAGE sql STABLE AS 'SELECT 100::bigint'; "
        f"SELECT {sized(101)};"
    )
    assert "over the limit of 100 bytes" in lowered.stderr
    assert psql("SELECT djqueue_max_payload_bytes()").stdout.strip() == "1048576"


@pytest.mark.django_db(transaction=True)
def test_a_task_name_longer_than_the_column_is_refused_clearly() -> None:
    refused = psql(f"SELECT djqueue_enqueue('{'t' * 256}')")
    assert "task_name must be at most 255 characters" in refused.stderr
