"""Poison jobs: whatever a job's data or code does, it ends its own job and no other, and
the worker goes on (real worker processes, every pool)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from djqueue.db.models import Job
from tests.acceptance.conftest import REPO_ROOT, WorkerProcess, Workers, wait_until
from tests.testapp import tasks

HAS_GEVENT = importlib.util.find_spec("gevent") is not None
POOLS = [
    "solo",
    "threads",
    "prefork",
    pytest.param("gevent", marks=pytest.mark.skipif(not HAS_GEVENT, reason="needs gevent")),
]


def start(workers: Workers, pool: str, *args: str) -> WorkerProcess:
    """A worker of ``pool`` (gevent through a manage.py that patches first)."""
    if pool == "gevent":
        entry = (str(REPO_ROOT / "manage.py"), "runworker", "--pool", "gevent")
        return workers.start(*args, entry=entry, ready=" ready: pool=gevent")
    return workers.start("-P", pool, *args)


def ended(results: list[Any], timeout: float = 30) -> dict[uuid.UUID, Job]:
    ids = [result.id for result in results]

    def all_done() -> dict[uuid.UUID, Job] | None:
        rows = {str(job.id): job for job in Job.objects.filter(id__in=ids)}
        done = all(job.state in ("SUCCESS", "FAILURE", "REVOKED") for job in rows.values())
        return rows if done and len(rows) == len(ids) else None

    return wait_until(all_done, timeout=timeout, what=f"{len(ids)} jobs to end")  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", POOLS)
def test_unstorable_errors_and_results_end_their_own_jobs(workers: Workers, pool: str) -> None:
    innocent = tasks.add.delay_many([(n, n) for n in range(30)])
    poison = [
        tasks.raise_unstorable.delay("nul"),
        tasks.raise_unstorable.delay("surrogate"),
        tasks.return_unstorable.delay(),
    ]
    innocent += tasks.add.delay_many([(n, n) for n in range(30)])
    worker = start(workers, pool, "-c", "2")

    rows = ended(innocent + poison)

    assert {rows[r.id].state for r in innocent} == {"SUCCESS"}
    nul, surrogate, result = (rows[r.id] for r in poison)
    assert (nul.state, nul.attempt) == ("FAILURE", 1)
    assert nul.error_message == "bad \\x00 byte in a message"
    assert "bad \\x00 byte" in nul.traceback
    assert surrogate.error_message == "bad \\udc80 byte in a message"
    assert result.state == "FAILURE"
    assert "lone surrogate" in result.error_message
    assert worker.process.poll() is None


@pytest.fixture
def refusing_trigger(transactional_db: None) -> Iterator[str]:
    """A trigger that makes the database refuse to store one particular result, as a
    constraint or a trigger of the project's own could (any error but a lost link)."""
    marker = f"refuse-{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION acceptance_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.result::text LIKE '%%' || TG_ARGV[0] || '%%' THEN
                    RAISE EXCEPTION 'results naming % are not stored here', TG_ARGV[0];
                END IF;
                RETURN NEW;
            END $$;
            """
        )
        cursor.execute(
            "CREATE TRIGGER acceptance_refuse BEFORE UPDATE ON djqueue_job "
            f"FOR EACH ROW EXECUTE FUNCTION acceptance_refuse('{marker}')"
        )
    try:
        yield marker
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS acceptance_refuse ON djqueue_job")
            cursor.execute("DROP FUNCTION IF EXISTS acceptance_refuse()")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_an_outcome_the_database_refuses_fails_only_its_job(
    workers: Workers, refusing_trigger: str, pool: str
) -> None:
    # Sent first and together, so that the refused outcome shares its write with others.
    before = tasks.add.delay_many([(n, 1) for n in range(20)])
    refused = tasks.return_marked.delay(refusing_trigger)
    after = tasks.add.delay_many([(n, 2) for n in range(20)])
    worker = start(workers, pool, "-c", "4")

    rows = ended([*before, refused, *after])

    assert {rows[r.id].state for r in before + after} == {"SUCCESS"}
    assert {rows[r.id].attempt for r in before + after} == {1}  # none ran twice
    job = rows[refused.id]
    assert (job.state, job.error_type) == ("FAILURE", "djqueue.exceptions.OutcomeNotStored")
    assert "the job ended SUCCESS, but the database refused to store" in job.error_message
    assert f"results naming {refusing_trigger} are not stored here" in job.error_message
    assert worker.process.poll() is None
    assert "writing them one by one" in worker.log()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", POOLS)
def test_a_job_that_kills_its_process_is_quarantined(workers: Workers, pool: str) -> None:
    innocent = tasks.add.delay_many([(n, n) for n in range(10)])
    deadly = tasks.abort_process.delay()
    innocent += tasks.add.delay_many([(n, n) for n in range(10)])
    first = start(workers, pool, "-c", "2")
    if pool != "prefork":
        # In-process pools: the first run takes the worker down with it (nothing can
        # stop a process from aborting itself). A new worker takes over, as a process
        # manager would start one.
        assert first.wait_exit(timeout=20) != 0
        start(workers, pool, "-c", "2")

    rows = ended([*innocent, deadly], timeout=60)

    assert {rows[r.id].state for r in innocent} == {"SUCCESS"}
    job = rows[deadly.id]
    assert (job.state, job.kills) == ("FAILURE", 3)
    assert job.error_type == "djqueue.exceptions.WorkerLostError"
    assert "killed its worker process 3 times" in job.error_message
    assert "SIGABRT" in job.error_message
    # Every worker still running went on; only an in-process first run took one down.
    exited = [w for w in workers.started if w.process.poll() is not None]
    assert len(exited) == (0 if pool == "prefork" else 1)
