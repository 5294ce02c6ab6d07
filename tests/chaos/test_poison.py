"""Poison jobs among many innocent ones, per pool.

A NUL character or a lone surrogate in an error message, a lone surrogate in a result,
a result above ``MAX_PAYLOAD_BYTES``: each such job ends in FAILURE saying what was
wrong, and no worker exits because of it. A job that calls ``os.abort()`` or
segfaults ends in FAILURE saying it "killed its worker process" after
``QUARANTINE_AFTER_KILLS`` runs; in the solo, threads and gevent pools it takes its
worker process down each time (the test starts a new one), in the prefork pool only a
child. Every innocent job succeeds.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from djqueue.core import conf
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers
from tests.chaos import counts
from tests.chaos.conftest import Scale, with_cursor
from tests.chaos.fleet import Fleet, pool_params
from tests.testapp import tasks

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600), pytest.mark.django_db(transaction=True)]

INNOCENT = ["tests.testapp.tasks.chaos_innocent"]
# Seconds for every job to end, kills and restarts included.
LIMIT = 90.0
# Exits a job may cause where it runs inside the worker process itself.
CRASHES = {-signal.SIGABRT, -signal.SIGSEGV}
KILLED = "killed its worker process"


def most_runs(pool: str) -> int:
    """Runs of a job that kills its process before it is failed: the quarantine setting.

    Under an in-process pool (solo, threads, gevent) the first run takes the worker
    with it, and nobody can tell which of its jobs did: that run counts as a loss, and
    the job's next runs, each in a process of its own, count as kills.
    """
    return conf.integer("QUARANTINE_AFTER_KILLS") + (0 if pool == "prefork" else 1)


@dataclass(frozen=True)
class Poison:
    """A poison job: how to send it, and what its message must say."""

    name: str
    send: Callable[[], Any]
    says: Callable[[Job], bool]
    kills: bool = False


# In the order sent. The two that kill their process go first and last, far apart: an
# innocent job running beside one of them when it kills the process loses an attempt,
# and none should be beside both.
POISONS = [
    Poison(
        "os.abort()", lambda: tasks.poison_abort.delay(), lambda j: KILLED in j.error_message, True
    ),
    Poison(
        "NUL in the error message",
        lambda: tasks.poison_nul_message.delay(),
        lambda job: job.error_type == "ValueError" and "poison: a NUL \\x00" in job.error_message,
    ),
    Poison(
        "lone surrogate in the error message",
        lambda: tasks.poison_surrogate_message.delay(),
        lambda job: job.error_type == "ValueError" and "\\udc80" in job.error_message,
    ),
    Poison(
        "lone surrogate in the result",
        lambda: tasks.poison_surrogate_result.delay(),
        lambda job: "surrogate" in job.error_message,
    ),
    Poison(
        "result above MAX_PAYLOAD_BYTES",
        lambda: tasks.poison_huge_result.delay(2 * conf.integer("MAX_PAYLOAD_BYTES")),
        lambda job: "MAX_PAYLOAD_BYTES" in job.error_message,
    ),
    Poison(
        "segfault", lambda: tasks.poison_segfault.delay(), lambda j: KILLED in j.error_message, True
    ),
]


@pytest.mark.parametrize("pool", pool_params(smoke="threads"))
def test_poison_jobs_fail_alone(
    pool: str, workers: Workers, run_log: str, scale: Scale, figures: dict[str, object]
) -> None:
    sent = _send_mixed(scale.poison_innocents)
    fleet = Fleet(workers, pool, scale.poison_workers)
    fleet.start()
    deadline = time.monotonic() + LIMIT
    while Job.objects.exclude(state__in=counts.FINAL).exists() and time.monotonic() < deadline:
        fleet.keep()
        time.sleep(0.1)
    fleet.keep()

    tally = with_cursor(counts.tally, INNOCENT)
    outcomes = {poison.name: Job.objects.get(id=job_id) for poison, job_id in sent}
    wrong = {
        poison.name: _describe(outcomes[poison.name])
        for poison, _ in sent
        if not _ended_as_promised(poison, outcomes[poison.name])
    }
    runs = {poison.name: _runs(job_id) for poison, job_id in sent if poison.kills}
    crashes = [e for e in fleet.not_by_test() if pool != "prefork" and e.code in CRASHES]
    by_a_job = [e for e in fleet.not_by_test() if e not in crashes]
    figures.update(
        {
            "innocent jobs": tally.jobs,
            "innocent jobs failed": tally.failed,
            "innocent jobs lost": tally.lost,
            "duplicates under one attempt": tally.ran_twice_in_one_attempt,
            "poison jobs not ended as promised": len(wrong),
            "runs of the process killers": sum(runs.values()),
            "worker exits by abort/segfault": len(crashes),
            "worker exits caused by a job (other)": len(by_a_job),
        }
    )
    figures.update({f"poison: {name}": _describe(job) for name, job in outcomes.items()})
    assert not by_a_job, f"workers exited because of a job: {', '.join(map(str, by_a_job))}"
    assert not wrong, f"poison jobs that did not end as promised: {wrong}"
    assert all(count <= most_runs(pool) for count in runs.values()), runs
    assert tally.failed == 0 and tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally


def _send_mixed(innocents: int) -> list[tuple[Poison, str]]:
    """Send the innocent jobs in chunks with a poison job between two chunks."""
    chunk = max(1, innocents // (len(POISONS) + 1))
    sent = []
    for poison in POISONS:
        tasks.chaos_innocent.delay_many([()] * chunk)
        sent.append((poison, str(poison.send().id)))
    tasks.chaos_innocent.delay_many([()] * (innocents - chunk * len(POISONS)))
    return sent


def _ended_as_promised(poison: Poison, job: Job) -> bool:
    return job.state == "FAILURE" and "worker lost" not in job.error_message and poison.says(job)


def _describe(job: Job) -> str:
    """The job's end in one printable line (its message may hold anything)."""
    message = ascii(job.error_message[:120])
    return f"{job.state} on attempt {job.attempt}: {job.error_type or '-'}: {message}"


def _runs(job_id: str) -> int:
    """Executions of ``job_id`` logged (a process killer logs itself before it kills)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {counts.RUN_TABLE} WHERE job_id = %s", [job_id])
        return int(cursor.fetchone()[0])
