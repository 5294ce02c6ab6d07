"""kill -9 under load, per pool: workers drain a backlog while one of them is killed
every few seconds and replaced. No job is lost, none runs twice under one attempt, and
the jobs of a killed worker are back in other hands within a lease or so."""

from __future__ import annotations

import random
import time

import pytest

from tests.acceptance.conftest import Workers
from tests.chaos import counts
from tests.chaos.conftest import Scale, settle, with_cursor
from tests.chaos.fleet import CONCURRENCY, Fleet, pool_params
from tests.testapp import tasks

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900), pytest.mark.django_db(transaction=True)]

RECORD = ["tests.testapp.tasks.chaos_record"]


@pytest.mark.parametrize("pool", pool_params(smoke="prefork"))
def test_kill_9_under_load(
    pool: str, workers: Workers, run_log: str, scale: Scale, figures: dict[str, object]
) -> None:
    fleet = Fleet(workers, pool, scale.kill_workers)
    # Jobs long enough that the backlog outlasts the kills whatever the pool's speed.
    places = scale.kill_workers * CONCURRENCY[pool]
    job_seconds = scale.kill_work_seconds * places / scale.kill_jobs
    tasks.chaos_record.delay_many([(job_seconds,)] * scale.kill_jobs)
    fleet.start()
    began = time.monotonic()

    recoveries = _kill_while_busy(fleet, scale, random.Random(f"kill-9 {pool}"))
    drained = settle(lambda: not with_cursor(counts.unfinished, RECORD), timeout=120)

    tally = with_cursor(counts.tally, RECORD)
    fleet.keep()
    figures.update(tally.figures())
    figures.update(
        {
            "kills": len(recoveries),
            "worker exits caused by a job": len(fleet.not_by_test()),
            "time to recover after a kill (max s)": max(recoveries, default=0.0),
            "time to drain (s)": time.monotonic() - began,
        }
    )
    assert drained, f"jobs still unfinished 120 s after the last kill: {tally}"
    assert tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally
    assert tally.succeeded_without_running == 0, tally
    assert not fleet.not_by_test(), ", ".join(map(str, fleet.not_by_test()))
    assert len(recoveries) == scale.kills, "the jobs ran out before the last kill"


def _kill_while_busy(fleet: Fleet, scale: Scale, chance: random.Random) -> list[float]:
    """Kill a worker every few seconds while jobs are left; return the recovery times.

    A kill has recovered when no job is held in the dead worker's name any more: its
    jobs were rescued (or had been handed on) and are in other hands or done.
    """
    recoveries: list[float] = []
    outstanding: dict[str, float] = {}  # dead worker's name prefix -> when it was killed
    kills = 0
    deadline = time.monotonic() + scale.kills * scale.kill_every[1] + 120
    next_kill = time.monotonic() + chance.uniform(*scale.kill_every)
    while (kills < scale.kills or outstanding) and time.monotonic() < deadline:
        fleet.keep()
        for prefix, killed_at in list(outstanding.items()):
            if not with_cursor(counts.held_by, prefix):
                recoveries.append(time.monotonic() - killed_at)
                del outstanding[prefix]
        if kills < scale.kills and time.monotonic() >= next_kill:
            if not with_cursor(counts.unfinished, RECORD):
                kills = scale.kills  # nothing left to disturb: stop killing
                continue
            victim = fleet.kill_one(chance)
            kills += 1
            outstanding[victim.name_prefix] = time.monotonic()
            fleet.keep()
            next_kill = time.monotonic() + chance.uniform(*scale.kill_every)
        time.sleep(0.1)
    return recoveries
