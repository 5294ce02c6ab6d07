"""Failover: the primary dies under steady sending and draining, a synchronous standby
takes over, and workers, the scheduler and producers find it by themselves.

Every process reaches the database through a multi-host connection (``HOST`` and
``PORT`` list both servers, ``target_session_attrs=read-write``), as
docs/deployment.md#high-availability-and-failover sets it up. Nothing may be lost: no
job whose ``delay()`` returned, no job that made it into the table; nothing runs twice
under one attempt; no periodic slot is sent twice; and the test reports how long after
the primary died the completion rate was up again.

The default suite runs the smoke version: a primary and a hot standby made with
``pg_basebackup``, failed over by hand (``pg_ctl stop -m immediate``, ``pg_ctl
promote``; tests/chaos/standby.py). ``--failover-full`` (or ``DJQUEUE_FAILOVER_FULL=1``)
also runs it on a pg_auto_failover formation, whose monitor notices the dead primary
and promotes the standby itself (tests/chaos/autofailover.py).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest

from tests.acceptance.conftest import REPO_ROOT, WorkerProcess, Workers
from tests.chaos import cluster as clusters
from tests.chaos import counts, sampling, standby
from tests.chaos.conftest import settle, workers_for
from tests.chaos.fleet import start_worker
from tests.chaos.sampling import RECORD, Sampler

pytestmark = [pytest.mark.chaos, pytest.mark.failover, pytest.mark.timeout(600)]

DB = "djqueue_failover"
NOOP = "tests.testapp.tasks.noop"
JOB_SECONDS = 0.01
# The completion rate counts as recovered at this share of the sending rate.
RECOVERED_SHARE = 0.5
# Seconds the jobs may take to finish once sending has stopped.
DRAIN_LIMIT = 30.0


class HighlyAvailable(Protocol):
    """Two servers behind one multi-host connection; one of them accepts writes."""

    def process_env(self, dbname: str, **extra: str) -> dict[str, str]: ...

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]: ...

    def fail_over(self) -> None: ...


@pytest.fixture
def pair() -> Iterator[standby.StandbyPair]:
    """A primary and a synchronous hot standby with djqueue's tables and the run log."""
    reason = clusters.unavailable()
    if reason:
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    with standby.standby_pair() as made:
        made.create_database(DB)
        with made.connect(DB) as conn:
            conn.execute(counts.CREATE_RUN_TABLE)
        yield made


@pytest.fixture
def group(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workers]:
    """Worker and scheduler processes; all die at teardown."""
    made = workers_for(request, tmp_path, DB)
    try:
        yield made
    finally:
        made.kill_all()


def test_failover_to_a_standby_loses_nothing(
    pair: standby.StandbyPair, group: Workers, tmp_path: Path, figures: dict[str, object]
) -> None:
    fail_over_under_load(pair, group, tmp_path, figures, rate=40, seconds=12)


def fail_over_under_load(
    ha: HighlyAvailable,
    group: Workers,
    tmp_path: Path,
    figures: dict[str, object],
    rate: float,
    seconds: float,
) -> None:
    """Send ``rate`` jobs a second for ``seconds`` seconds one ``delay()`` at a time,
    with two workers and a scheduler firing every second; fail over once the jobs flow."""
    env = ha.process_env(DB)
    run_django(env, EVERY_SECOND)
    workers = [start_worker(group, "threads", env=env, wait_ready=False) for _ in range(2)]
    beat = group.start(entry=("-m", "django", "runbeat"), prefix="b", wait_ready=False, env=env)
    for worker in workers:
        worker.wait_for_log(" ready: pool=")
    beat.wait_for_log("is now the leader")

    acked = tmp_path / "acked.txt"
    flowing = RECOVERED_SHARE * rate
    with (
        sampling.producer(
            env, rate, seconds, JOB_SECONDS, acked, tmp_path / "producer.log", "one"
        ) as producer,
        Sampler(lambda: ha.connect(DB)) as sampler,
    ):
        began = time.monotonic()
        assert settle(lambda: sampler.rate_since(began) >= flowing, 60), "jobs are not flowing"
        killed_at = time.monotonic()
        ha.fail_over()
        back = settle(lambda: sampler.rate_since(killed_at) >= flowing, 120)
        recovery = time.monotonic() - killed_at if back else -1.0
        producer_code = producer.wait(seconds + 120)

    with ha.connect(DB) as conn:
        after_failover = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        drained = settle(lambda: not counts.unfinished(conn.cursor(), RECORD), DRAIN_LIMIT)
        # The scheduler leads again on the new primary and sends the slots after it.
        settle(lambda: _slots(conn)[-1:] > [after_failover + SECOND], 30)
        tally = counts.tally(conn.cursor(), RECORD)
        missing = sampling.missing(conn, acked)
        slots = _slots(conn)
        slot_jobs = _count(conn, "SELECT count(*) FROM djqueue_job WHERE task_name = %s", NOOP)
    sent = len(acked.read_text().split())
    figures.update(tally.figures())
    figures.update(
        {
            "delay() calls that returned": sent,
            "of those, missing from the table": missing,
            "time until throughput recovered (s)": recovery,
            "periodic slots sent": len(slots),
            "periodic slots sent twice": slot_jobs - len(set(slots)),
            "worker exits": sum(w.process.poll() is not None for w in workers),
        }
    )
    assert producer_code == 0, (tmp_path / "producer.log").read_text()
    assert back, "throughput did not recover within 120 s of the failover"
    assert drained, tally
    assert missing == 0, f"{missing} job(s) whose delay() returned are gone"
    assert tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally
    assert tally.succeeded_without_running == 0, tally
    assert slot_jobs == len(set(slots)), f"{slot_jobs} jobs for {len(set(slots))} slots"
    assert slots[-1] > after_failover + SECOND, "the scheduler did not lead again"
    for process in [*workers, beat]:
        _assert_rode_it_out(process)


SECOND = datetime.timedelta(seconds=1)

# Run in a process of the project on the pair: a periodic task every second.
EVERY_SECOND = f"""
from djqueue.db.models import IntervalSchedule, PeriodicTask
interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
PeriodicTask.objects.create(name="failover", task={NOOP!r}, interval=interval)
"""


def run_django(env: dict[str, str], code: str) -> Any:
    """Run ``code`` in a process of this project with ``env``; return what it prints
    on its last line, as JSON (None when it prints nothing)."""
    done = subprocess.run(
        [sys.executable, "-c", "import django\ndjango.setup()\n" + code],
        cwd=REPO_ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def _slots(conn: psycopg.Connection[Any]) -> list[datetime.datetime]:
    rows = conn.execute(
        "SELECT r.slot FROM djqueue_periodicrun AS r "
        "JOIN djqueue_periodictask AS t ON t.id = r.periodic_task_id "
        "WHERE t.name = 'failover' ORDER BY r.slot"
    ).fetchall()
    return [row[0] for row in rows]


def _count(conn: psycopg.Connection[Any], query: str, *params: object) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _assert_rode_it_out(process: WorkerProcess) -> None:
    """The process is still running and logged no traceback."""
    log = process.log()
    assert process.process.poll() is None, f"{process.hostname} exited:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-3000:]
