"""SIGSTOP past the lease, per pool: a worker holding prefetched jobs is frozen (with its
children) longer than its lease; another worker rescues and finishes them; then the frozen
one is resumed. It must not run any job that was taken from it, must not exit, and must
go on working."""

from __future__ import annotations

import signal
import time

import pytest

from tests.acceptance.conftest import Workers, wait_until
from tests.chaos import counts
from tests.chaos.conftest import settle, with_cursor
from tests.chaos.fleet import CONCURRENCY, pool_params, signal_family, start_worker
from tests.testapp import tasks

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300), pytest.mark.django_db(transaction=True)]

RECORD = ["tests.testapp.tasks.chaos_record"]
PREFETCH = 4
# The jobs running when the worker stops: long enough that none ends, and no other
# starts, between the moment the test sees them all running and the SIGSTOP.
RUNNING_SECONDS = 1.5
# The jobs waiting in its buffer behind them: short, the rescuer runs them quickly.
BUFFERED_SECONDS = 0.1
LEASE_SECONDS = 2.0


@pytest.mark.parametrize("pool", pool_params(smoke="solo"))
def test_a_worker_resumed_after_its_lease_runs_nothing_taken_from_it(
    pool: str, workers: Workers, run_log: str, figures: dict[str, object]
) -> None:
    slots = min(2, CONCURRENCY[pool])
    args = ("-c", str(slots), "--prefetch-multiplier", str(PREFETCH))
    held_full = slots * PREFETCH
    # Claimed in the order sent: the long ones run, the short ones wait in the buffer.
    tasks.chaos_record.delay_many([(RUNNING_SECONDS,)] * slots)
    tasks.chaos_record.delay_many([(BUFFERED_SECONDS,)] * (held_full - slots))
    frozen = start_worker(workers, pool, *args)
    wait_until(
        lambda: _holds_and_runs(frozen.name_prefix, held_full, slots),
        timeout=15,
        what="the worker to hold a full buffer and run a job in each slot",
    )
    signal_family(frozen, signal.SIGSTOP)
    stopped_at = time.monotonic()
    held = with_cursor(counts.held_by, frozen.name_prefix)

    rescuer = start_worker(workers, pool, *args)
    rescued = settle(lambda: _all_succeeded(held), timeout=LEASE_SECONDS + 30)
    # Frozen: nothing more can come from it. What it ran, it ran before the stop.
    ran_before = with_cursor(counts.ran_by, frozen.name_prefix, held)
    taken = [job_id for job_id in held if job_id not in ran_before]
    stopped_for = time.monotonic() - stopped_at

    rescuer.send(signal.SIGTERM)  # from now on only the resumed worker takes jobs
    rescuer_code = rescuer.wait_exit(30)
    signal_family(frozen, signal.SIGCONT)
    resumed_at = time.monotonic()
    tasks.chaos_record.delay_many([(0.0,)] * held_full)
    went_on = settle(lambda: not with_cursor(counts.unfinished, RECORD), timeout=30)
    back_after = time.monotonic() - resumed_at
    # Its old buffer came before the new jobs: whatever it was going to do with it, it
    # has done now.
    taken_and_run = with_cursor(counts.runs_by, frozen.name_prefix, taken)
    tally = with_cursor(counts.tally, RECORD)

    figures.update(tally.figures())
    figures.update(
        {
            "jobs held when stopped": len(held),
            "stopped for (s)": stopped_for,
            "jobs taken from it": len(taken),
            "taken jobs it ran after resuming": taken_and_run,
            "resumed worker exited": frozen.process.poll() is not None,
            "time until it worked again (s)": back_after,
        }
    )
    assert rescued, "the held jobs were not rescued and finished by the other worker"
    assert taken, "no buffered job was taken from the stopped worker: nothing was tested"
    assert taken_and_run == 0, f"the resumed worker ran {taken_and_run} job(s) taken from it"
    assert frozen.process.poll() is None, f"the resumed worker exited: {frozen.process.returncode}"
    assert rescuer_code == 0
    assert went_on, "the resumed worker did not run new jobs"
    assert tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally


def _holds_and_runs(worker_prefix: str, holding: int, running: int) -> bool:
    """Whether ``holding`` jobs are held in the worker's name and ``running`` of them ran."""
    held = with_cursor(counts.held_by, worker_prefix)
    return len(held) == holding and len(with_cursor(counts.ran_by, worker_prefix, held)) == running


def _all_succeeded(job_ids: list[str]) -> bool:
    from djqueue.db.models import Job

    return Job.objects.filter(id__in=job_ids, state="SUCCESS").count() == len(job_ids)
