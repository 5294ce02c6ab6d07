"""The djqueue half of the benchmark, run in this process with Django set up.

Workers are real ``manage.py runworker`` subprocesses; the figures come from the job
table's own timestamps where the database can tell more precisely than we can.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from benchmarks import common

SETTINGS = "benchmarks.settings"


@dataclass(frozen=True)
class WorkerSpec:
    """How the ``runworker`` processes of a phase are started."""

    count: int
    pool: str
    concurrency: int


def prepare_database() -> None:
    """Create the benchmark database if it is missing and migrate it."""
    db = settings.DATABASES["default"]
    params = {k: db[k.upper()] for k in ("user", "host", "port", "password") if db[k.upper()]}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if found.fetchone() is None:
            admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0)


def clean() -> None:
    """Empty the queue tables, and let the planner see them as they are."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE djqueue_job, djqueue_worker")
        cursor.execute("VACUUM ANALYZE djqueue_job")


def enqueue_one_by_one(jobs: int) -> dict[str, Any]:
    """``noop.delay(i)`` ``jobs`` times, each in its own (autocommit) transaction."""
    from benchmarks.benchapp.tasks import noop

    clean()
    started = time.perf_counter()
    for index in range(jobs):
        noop.delay(index)
    elapsed = time.perf_counter() - started
    return {"enqueue_one": common.rate(jobs, elapsed), "enqueue_one_seconds": elapsed}


def enqueue_bulk(jobs: int) -> dict[str, Any]:
    """One ``noop.delay_many`` call for ``jobs`` jobs; they stay queued for the drain."""
    from benchmarks.benchapp.tasks import noop

    clean()
    calls = [(index,) for index in range(jobs)]
    started = time.perf_counter()
    noop.delay_many(calls)
    elapsed = time.perf_counter() - started
    return {"enqueue_bulk": common.rate(jobs, elapsed), "enqueue_bulk_seconds": elapsed}


def drain(jobs: int, spec: WorkerSpec, timeout: float) -> dict[str, Any]:
    """Start ``spec.count`` workers on ``jobs`` queued no-op jobs and time them to the end."""
    if _count("TRUE") != jobs:
        raise RuntimeError(f"the drain expects exactly {jobs} queued jobs")
    logs = Path(tempfile.mkdtemp(prefix="djqueue-bench-"))
    spawned = time.time()
    workers = start_workers(spec, logs)
    try:
        done = common.wait_until(lambda: _count("finished_at IS NOT NULL") >= jobs, timeout, 0.2)
        seen_done = time.time()
    finally:
        common.stop(workers)
    if not done:
        raise RuntimeError(
            f"drain timed out after {timeout:.0f}s with {_count('finished_at IS NOT NULL')} "
            f"of {jobs} jobs finished; worker log:\n{common.tail(logs / 'worker-0.log')}"
        )
    first_start, last_finish, success, once = _drain_facts()
    span = last_finish - first_start
    return {
        "drain": common.rate(jobs, span),
        "drain_seconds": span,
        # From spawning the processes (Django start-up included) to the last finish.
        "drain_wall": common.rate(jobs, last_finish - spawned),
        "drain_observed_wall": common.rate(jobs, seen_done - spawned),
        "drain_success": success,
        "drain_exactly_once": once,
        "drain_ok": success == jobs and once == jobs,
    }


def pick_up_latency(samples: int, spec: WorkerSpec, timeout: float) -> dict[str, Any]:
    """Send ``stamp`` jobs one at a time to one idle worker; enqueue → start, in ms."""
    from benchmarks.benchapp.tasks import stamp

    clean()
    logs = Path(tempfile.mkdtemp(prefix="djqueue-bench-"))
    workers = start_workers(WorkerSpec(1, spec.pool, spec.concurrency), logs)
    delays: list[float] = []
    try:
        if not common.wait_until(lambda: _workers_registered() >= 1, timeout):
            raise RuntimeError(f"worker did not start:\n{common.tail(logs / 'worker-0.log')}")
        for _ in range(5):  # warm-up: first connections, imports, plan caches
            stamp.delay().get(timeout=timeout)
        for _ in range(samples):
            time.sleep(0.02)  # let the worker settle back into its idle wait
            sent = time.time()
            result = stamp.delay()
            began = result.get(timeout=timeout)
            delays.append((began - sent) * 1000)
    finally:
        common.stop(workers)
    return {
        "latency_p50_ms": common.percentile(delays, 0.50),
        "latency_p99_ms": common.percentile(delays, 0.99),
        "latency_max_ms": max(delays),
        "latency_samples": len(delays),
    }


def start_workers(spec: WorkerSpec, logs: Path, extra: Sequence[str] = ()) -> list[Any]:
    """Start ``spec.count`` ``runworker`` processes (with ``extra`` arguments)."""
    command = [
        sys.executable,
        str(common.ROOT / "manage.py"),
        "runworker",
        "--pool",
        spec.pool,
        "--concurrency",
        str(spec.concurrency),
        "--loglevel",
        "warning",
        *extra,
    ]
    env = common.child_env(DJANGO_SETTINGS_MODULE=SETTINGS)
    return [common.start(command, logs / f"worker-{i}.log", env) for i in range(spec.count)]


def _count(where: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM djqueue_job WHERE {where}")
        return int(cursor.fetchone()[0])


def _workers_registered() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM djqueue_worker WHERE stopped_at IS NULL")
        return int(cursor.fetchone()[0])


def _drain_facts() -> tuple[float, float, int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)),
                   count(*) FILTER (WHERE state = 'SUCCESS'),
                   count(*) FILTER (WHERE state = 'SUCCESS' AND attempt = 1)
            FROM djqueue_job
            """
        )
        first, last, success, once = cursor.fetchone()
    return float(first), float(last), int(success), int(once)
