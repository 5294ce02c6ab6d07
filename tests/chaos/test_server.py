"""PostgreSQL restarts (``pg_ctl stop -m fast``) and crashes (``-m immediate``) under
steady sending and draining, on a private cluster the test makes and removes itself.

Workers and a producer process reach the cluster through ``PGPORT``. Nothing may be
lost: neither a job whose sending returned, nor any job that made it into the table;
nothing may run twice under one attempt; workers ride it out; and the test reports how
long after the server is back the completion rate is up again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import Workers
from tests.chaos import cluster as clusters
from tests.chaos import counts, sampling
from tests.chaos.conftest import Scale, settle, workers_for
from tests.chaos.fleet import start_worker
from tests.chaos.sampling import RECORD, Sampler

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

DB = "djqueue_chaos"
JOB_SECONDS = 0.01
# The completion rate counts as recovered at this share of the sending rate.
RECOVERED_SHARE = 0.5
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
        sampling.producer(
            fresh.process_env(DB),
            scale.server_rate,
            scale.server_seconds,
            JOB_SECONDS,
            acked,
            tmp_path / "producer.log",
        ) as producer,
        Sampler(lambda: fresh.connect(DB)) as sampler,
    ):
        outages, recoveries = _stop_and_start(fresh, mode, sampler, scale)
        producer_code = producer.wait(scale.server_seconds + 60)
    with fresh.connect(DB) as conn:
        settle(lambda: not counts.unfinished(conn.cursor(), RECORD), DRAIN_LIMIT)
        tally = counts.tally(conn.cursor(), RECORD)
        missing = sampling.missing(conn, acked)

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
