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
from tests.chaos import autofailover, counts, sampling, standby
from tests.chaos import cluster as clusters
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
def formation() -> Iterator[autofailover.Formation]:
    """A pg_auto_failover monitor, a primary with djqueue's tables and the run log, and
    a synchronous standby."""
    reason = autofailover.unavailable()
    if reason:
        pytest.skip(f"no pg_auto_failover formation: {reason}")
    with autofailover.formation(DB) as made:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--settings=tests.settings", "-v", "0"],
            cwd=REPO_ROOT,
            env=made.process_env(DB),
            check=True,
            capture_output=True,
            timeout=120,
        )
        with made.connect(DB) as conn:
            conn.execute(counts.CREATE_RUN_TABLE)
        made.checkpoint()
        made.create_node("node2")
        made.wait_for_states({"node1": "primary", "node2": "secondary"})
        assert made.synchronous_standby_names(), "commits do not wait for the standby"
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


@pytest.mark.failover(full=True)
def test_automatic_failover_with_pg_auto_failover_loses_nothing(
    formation: autofailover.Formation,
    group: Workers,
    tmp_path: Path,
    figures: dict[str, object],
) -> None:
    fail_over_under_load(formation, group, tmp_path, figures, rate=40, seconds=45)
    figures["promoted by the monitor"] = formation.primary()


def test_monitoring_reads_go_to_the_standby(pair: standby.StandbyPair) -> None:
    """With ``MONITORING_DATABASE`` on both servers, a standby preferred (as
    docs/deployment.md sets it up), the overview, the figures and the metrics are read
    on the standby, and jobs are still sent to the primary.

    The standby's replay is paused while jobs are sent: they are on the primary only,
    so figures that show none of them were read on the standby.
    """
    env = pair.process_env(DB, DJQUEUE_TEST_MONITORING_SESSION_ATTRS="prefer-standby")
    with pair.standby.connect(DB) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    paused = run_django(env, MONITOR, "30")
    with pair.primary.connect(DB) as conn:
        on_primary = _count(conn, "SELECT count(*) FROM djqueue_job WHERE state = 'PENDING'")
    assert on_primary == 30
    assert paused["status"] == 200
    assert paused["monitoring_is_standby"] is True
    assert paused["on_primary"] == []
    assert paused["overview"].get("default", 0) == 0, paused
    assert paused["stats"].get("default", 0) == 0, paused
    assert not any('queue="default"' in line for line in paused["metrics"]), paused

    with pair.standby.connect(DB) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")
        settle(
            lambda: _count(conn, "SELECT count(*) FROM djqueue_job") == 30,
            30,
        )
    resumed = run_django(env, MONITOR, "0")
    assert resumed["overview"]["default"] == 30
    assert resumed["stats"]["default"] == 30
    assert 'djqueue_jobs{queue="default",state="waiting"} 30.0' in resumed["metrics"]
    assert resumed["on_primary"] == []


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

# Run in a process of the project whose DATABASES has a "monitoring" alias on the
# standby (MONITORING_DATABASE): sends jobs (they go to the primary), then reads the
# admin's overview, manage.py djqueue's figures and the metrics, noting every statement
# on the primary's connection that touches djqueue's tables meanwhile.
MONITOR = """
import json, sys
from django.contrib.auth.models import User
from django.db import connections
from django.test import RequestFactory
from django.urls import resolve, reverse
from djqueue.ops import metrics, stats
from tests.testapp import tasks

sent = [str(tasks.add.delay(i, i).id) for i in range(int(sys.argv[1]))]
on_primary = []

def note(execute, sql, params, many, context):
    if "djqueue_" in sql:
        on_primary.append(sql)
    return execute(sql, params, many, context)

with connections["default"].execute_wrapper(note):
    url = reverse("admin:djqueue_overview_data")
    request = RequestFactory().get(url)
    request.user = User(username="admin", is_superuser=True, is_staff=True, is_active=True)
    response = resolve(url).func(request)
    overview = json.loads(response.content)
    depths = {depth.queue: depth.waiting for depth in stats.queue_depths()}
    exposition = metrics.exposition().decode()
with connections["monitoring"].cursor() as cursor:
    cursor.execute("SELECT pg_is_in_recovery()")
    standby = cursor.fetchone()[0]
print(json.dumps({
    "sent": sent,
    "status": response.status_code,
    "overview": {row["queue"]: row["waiting"] for row in overview["queues"]},
    "stats": depths,
    "metrics": [line for line in exposition.splitlines() if 'state="waiting"' in line],
    "on_primary": on_primary,
    "monitoring_is_standby": standby,
}))
"""

# Run in a process of the project on the pair: a periodic task every second.
EVERY_SECOND = f"""
from djqueue.db.models import IntervalSchedule, PeriodicTask
interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
PeriodicTask.objects.create(name="failover", task={NOOP!r}, interval=interval)
"""


def run_django(env: dict[str, str], code: str, *args: str) -> Any:
    """Run ``code`` with ``args`` in a process of this project with ``env``; return what
    it prints on its last line, as JSON (None when it prints nothing)."""
    done = subprocess.run(
        [sys.executable, "-c", "import django\ndjango.setup()\n" + code, *args],
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
