"""PostgreSQL restarts (``pg_ctl stop -m fast``) and crashes (``-m immediate``) under
steady sending and draining, on a private cluster the test makes and removes itself.

Workers and a producer process reach the cluster through ``PGPORT``. Nothing may be
lost: neither a job whose sending returned, nor any job that made it into the table;
nothing may run twice under one attempt; workers ride it out; and the test reports how
long after the server is back the completion rate is up again.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.acceptance.conftest import REPO_ROOT, Workers
from tests.chaos import cluster as clusters
from tests.chaos import counts
from tests.chaos.conftest import Scale, settle, workers_for
from tests.chaos.fleet import start_worker

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

DB = "djqueue_chaos"
RECORD = ["tests.testapp.tasks.chaos_record"]
JOB_SECONDS = 0.01
# The completion rate counts as recovered at this share of the sending rate.
RECOVERED_SHARE = 0.5
# Seconds over which the completion rate is measured.
WINDOW = 0.5
# Seconds the jobs may take to finish once sending has stopped.
DRAIN_LIMIT = 10.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[clusters.PrivateCluster]:
    """A private cluster with djqueue's tables and the run log, for this module."""
    reason = clusters.unavailable()
    if reason:
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    with clusters.private_cluster() as made:
        made.create_database(DB)
        with made.connect(DB) as conn:
            conn.execute(counts.CREATE_RUN_TABLE)
        yield made


@pytest.fixture
def fresh(cluster: clusters.PrivateCluster) -> clusters.PrivateCluster:
    """The cluster, with no job and no run left from an earlier test."""
    with cluster.connect(DB) as conn:
        conn.execute(f"TRUNCATE djqueue_job, djqueue_worker, {counts.RUN_TABLE}")
    return cluster


@pytest.fixture
def cluster_workers(
    request: pytest.FixtureRequest, tmp_path: Path, fresh: clusters.PrivateCluster
) -> Iterator[Workers]:
    """Worker processes on the private cluster; all die at teardown."""
    group = workers_for(request, tmp_path, DB)
    try:
        yield group
    finally:
        group.kill_all()


class Sampler:
    """Counts succeeded jobs on the cluster every 0.1 s from a thread, across outages."""

    def __init__(self, cluster: clusters.PrivateCluster) -> None:
        self.cluster = cluster
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def rate_since(self, since: float, window: float = WINDOW) -> float:
        """Jobs succeeded per second over the last ``window`` seconds, counting only
        samples taken after ``since`` (0 until there are ``window`` seconds of them)."""
        samples = [(t, n) for t, n in list(self.samples) if t >= since]
        if not samples or samples[-1][0] - samples[0][0] < window:
            return 0.0
        now, latest = samples[-1]
        then, before = [(t, n) for t, n in samples if t <= now - window][-1]
        return (latest - before) / (now - then)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.wait(0.1):
            try:
                conn = conn or self.cluster.connect(DB)
                with conn.cursor() as cursor:
                    self.samples.append((time.monotonic(), counts.succeeded(cursor, RECORD)))
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["restart", "crash"])
def test_server_restarts_and_crashes_lose_nothing(
    mode: str,
    fresh: clusters.PrivateCluster,
    cluster_workers: Workers,
    tmp_path: Path,
    scale: Scale,
    figures: dict[str, object],
) -> None:
    env = {"PGPORT": str(fresh.port)}
    running = [start_worker(cluster_workers, "threads", env=env) for _ in range(2)]
    acked = tmp_path / "acked.txt"
    with (
        _producer(fresh, scale, acked, tmp_path / "producer.log") as producer,
        Sampler(fresh) as sampler,
    ):
        outages, recoveries = _stop_and_start(fresh, mode, sampler, scale)
        producer_code = producer.wait(scale.server_seconds + 60)
    with fresh.connect(DB) as conn:
        settle(lambda: not counts.unfinished(conn.cursor(), RECORD), DRAIN_LIMIT)
        tally = counts.tally(conn.cursor(), RECORD)
        missing = _missing(conn, acked)

    figures.update(tally.figures())
    figures.update(
        {
            "jobs whose sending returned": len(acked.read_text().split()),
            "of those, missing from the table": missing,
            f"server {mode} stops": len(outages),
            "server down (max s)": max(outages, default=0.0),
            "time until throughput recovered (max s)": max(recoveries, default=0.0),
            "worker exits": sum(w.process.poll() is not None for w in running),
        }
    )
    assert producer_code == 0, (tmp_path / "producer.log").read_text()
    assert missing == 0, f"{missing} job(s) whose sending returned are gone"
    assert tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally
    assert tally.succeeded_without_running == 0, tally
    assert all(r >= 0 for r in recoveries), f"throughput did not recover: {recoveries}"
    assert all(w.process.poll() is None for w in running), "a worker exited"


def _stop_and_start(
    cluster: clusters.PrivateCluster, mode: str, sampler: Sampler, scale: Scale
) -> tuple[list[float], list[float]]:
    """Stop and start the server ``server_events`` times, spread over the sending.

    Returns how long each outage lasted, and how long after each the completion rate
    took to recover (-1: not within a minute).
    """
    flowing = RECOVERED_SHARE * scale.server_rate
    began = up = time.monotonic()
    outages, recoveries = [], []
    for event in range(scale.server_events):
        steady = settle(lambda: sampler.rate_since(up) >= flowing, 30)  # noqa: B023
        assert steady, "jobs are not flowing before the server goes down"
        due = began + (event + 1) * scale.server_seconds / (scale.server_events + 1)
        time.sleep(max(0.0, due - time.monotonic()))  # the schedule of the outages
        down = time.monotonic()
        cluster.stop(mode)
        cluster.start()
        up = time.monotonic()
        outages.append(up - down)
        back = settle(lambda: sampler.rate_since(up) >= flowing, 60)  # noqa: B023
        recoveries.append(time.monotonic() - up if back else -1.0)
    return outages, recoveries


@contextlib.contextmanager
def _producer(
    cluster: clusters.PrivateCluster, scale: Scale, acked: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``tests.chaos.produce`` against the cluster; killed if still running after."""
    command = [
        sys.executable,
        "-m",
        "tests.chaos.produce",
        str(scale.server_rate),
        str(scale.server_seconds),
        str(JOB_SECONDS),
        str(acked),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=cluster.process_env(DB),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)


def _missing(conn: psycopg.Connection[Any], acked: Path) -> int:
    """Ids in ``acked`` that have no job row."""
    ids = acked.read_text().split()
    row = conn.execute(
        "SELECT count(*) FROM unnest(%s::uuid[]) AS a(id) "
        "WHERE NOT EXISTS (SELECT 1 FROM djqueue_job AS j WHERE j.id = a.id)",
        [ids],
    ).fetchone()
    return int(row[0]) if row else 0
