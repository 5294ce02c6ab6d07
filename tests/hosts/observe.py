"""What the worker hosts tests look at, as a user would: job rows, the execution log
(``chaos_run``, one row per execution, written by the task itself) and worker logs."""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.db import connection

from djqueue.db.models import Job
from tests.chaos import counts
from tests.hosts.lab import Host
from tests.hosts.site import HostProcess
from tests.testapp import tasks

RECORD = ["tests.testapp.tasks.chaos_record"]


def prefix(host: Host) -> str:
    """The start of the name of every worker on ``host`` (named after its hostname)."""
    return f"djqueue@{host.name}."


def send(count: int, seconds: float) -> list[str]:
    """Send ``count`` recording jobs that each take ``seconds``; their ids."""
    return [str(result.id) for result in tasks.chaos_record.delay_many([(seconds,)] * count)]


class Feeder:
    """Keeps work waiting: sends a batch whenever fewer than ``low`` jobs are unfinished
    (call :meth:`feed` from a wait's check). Remembers the ids of what it sent."""

    def __init__(self, low: int, batch: int, seconds: float) -> None:
        self.low, self.batch, self.seconds = low, batch, seconds
        self.sent: list[str] = []

    def feed(self) -> None:
        if unfinished() < self.low:
            self.sent += send(self.batch, self.seconds)


def held_by(host: Host) -> list[str]:
    """Ids of the jobs held (RECEIVED or STARTED) by workers on ``host``."""
    with connection.cursor() as cursor:
        return list(counts.held_by(cursor, prefix(host)))


def ran_by(host: Host, job_ids: Sequence[str] | None = None) -> set[str]:
    """Ids of the jobs (among ``job_ids``, or any) with an execution on ``host``."""
    with connection.cursor() as cursor:
        if job_ids is None:
            cursor.execute(
                f"SELECT DISTINCT job_id::text FROM {counts.RUN_TABLE} WHERE worker LIKE %s",
                [prefix(host) + "%"],
            )
            return {row[0] for row in cursor.fetchall()}
        return counts.ran_by(cursor, prefix(host), job_ids)


def executions_per_host(hosts: Sequence[Host]) -> dict[str, int]:
    """Executions logged by the workers of each host."""
    with connection.cursor() as cursor:
        found = {}
        for host in hosts:
            cursor.execute(
                f"SELECT count(*) FROM {counts.RUN_TABLE} WHERE worker LIKE %s",
                [prefix(host) + "%"],
            )
            found[host.name] = int(cursor.fetchone()[0])
        return found


def tally() -> counts.Tally:
    with connection.cursor() as cursor:
        return counts.tally(cursor, RECORD)


def unfinished() -> int:
    with connection.cursor() as cursor:
        return counts.unfinished(cursor, RECORD)


def finished_elsewhere(job_ids: Sequence[str], host: Host) -> list[Job]:
    """The jobs among ``job_ids`` that ended SUCCESS by a worker not on ``host``."""
    return list(
        Job.objects.filter(id__in=job_ids, state="SUCCESS").exclude(worker__startswith=prefix(host))
    )


def fenced(processes: Sequence[HostProcess], job_ids: Sequence[str]) -> set[str]:
    """The ids among ``job_ids`` whose late outcome one of ``processes`` logged as ignored."""
    logs = "".join(process.log() for process in processes)
    return {job_id for job_id in job_ids if f"Ignored a late outcome for job {job_id}" in logs}


class Stopwatch:
    """Seconds since it was made."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.started
