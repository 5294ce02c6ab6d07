"""A bad network between a worker and PostgreSQL, under load.

One worker reaches the database through a :class:`~tests.chaos.proxy.ChaosProxy`, a peer
reaches it directly, and a producer keeps sending jobs. The proxy then freezes (nothing
forwarded for longer than a lease), cuts (every connection dropped), or swallows replies
(the server commits a claim or an outcome whose reply never arrives; then the link is
reset). Nothing may be lost, nothing may run twice under one attempt, jobs claimed by a
reply that was swallowed must go back to the queue, and the worker must recover by
itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import WorkerProcess, Workers, wait_until
from tests.chaos import counts
from tests.chaos.conftest import Producer, Scale, db_now, settle, with_cursor
from tests.chaos.fleet import start_worker
from tests.chaos.proxy import CLIENT_ENV, ChaosProxy
from tests.testapp import tasks

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600), pytest.mark.django_db(transaction=True)]

RECORD = ["tests.testapp.tasks.chaos_record"]
JOB_SECONDS = 0.05
# Sent while replies are swallowed: more than the peer can take at once, so that the
# worker behind the proxy claims some of them too.
BURST = 60
# Seconds of load between two disruptions.
CALM = 1.0
# Seconds a worker may take to complete a job again once the network is back.
RECOVERY_LIMIT = 30.0
# Seconds within which a worker must let go of the jobs of a claim whose reply it never
# got (three leases: it has reconnected and renewed, or failed to renew, by then).
ORPHAN_LIMIT = 6.0


@pytest.mark.parametrize("mode", ["freeze", "cut", "swallow"])
def test_a_worker_behind_a_bad_network(
    mode: str,
    workers: Workers,
    run_log: str,
    proxy: ChaosProxy,
    producers: list[Producer],
    scale: Scale,
    figures: dict[str, object],
) -> None:
    env = {"PGPORT": str(proxy.port), **CLIENT_ENV}
    behind = start_worker(workers, "threads", env=env, prefix="net")
    peer = start_worker(workers, "threads", "-c", "2", prefix="peer")
    producer = Producer(scale.net_rate, JOB_SECONDS)
    producers.append(producer)
    producer.start()
    assert _completes_a_job(behind, db_now(), timeout=15), "the worker never got going"

    rounds = Rounds()
    for _ in range(scale.net_rounds):
        time.sleep(CALM)  # load between disruptions: the point is time passing
        if mode == "swallow":
            _swallow_twice(proxy, producer, behind, scale, rounds)
        elif mode == "freeze":
            _disrupt(proxy.freeze, proxy.thaw, scale.net_disruption)
        else:
            _disrupt(proxy.cut, proxy.open, scale.net_disruption)
        rounds.recoveries.append(_recovery(behind))
    sent = producer.stop()
    drained = settle(lambda: not with_cursor(counts.unfinished, RECORD), timeout=60)

    tally = with_cursor(counts.tally, RECORD)
    orphans, kept, recoveries = rounds.orphans, rounds.kept, rounds.recoveries
    stuck = Job.objects.filter(id__in=orphans).exclude(state="SUCCESS").count()
    figures.update(tally.figures())
    figures.update(
        {
            "jobs sent under load": sent,
            "worker exits": sum(w.process.poll() is not None for w in (behind, peer)),
            "time to recover (max s)": max((r for r in recoveries if r >= 0), default=0.0),
            "disruptions not recovered from": sum(r < 0 for r in recoveries),
        }
    )
    if mode == "swallow":
        figures["claims whose reply was swallowed (jobs)"] = len(orphans)
        figures[f"of those, still held {ORPHAN_LIMIT:g} s later"] = kept
        figures["of those, not done at the end"] = stuck
        assert orphans, "no claim was swallowed: nothing was tested"
    assert kept == 0, f"{kept} job(s) claimed by a swallowed reply stayed with the worker"
    assert stuck == 0, f"{stuck} job(s) claimed by a swallowed reply never went back"
    assert drained, f"jobs still unfinished a minute after the load: {tally}"
    assert tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally
    assert tally.succeeded_without_running == 0, tally
    assert all(r >= 0 for r in recoveries), f"the worker did not recover: {recoveries}"
    assert behind.process.poll() is None, "the worker behind the proxy exited"
    assert peer.process.poll() is None, "the peer exited"


@dataclass
class Rounds:
    """What the disruptions of one test left behind."""

    # Jobs of claims whose reply was swallowed.
    orphans: list[str] = field(default_factory=list)
    # Of those, still held in the worker's name ORPHAN_LIMIT seconds later.
    kept: int = 0
    # Seconds until the worker completed a job after each disruption (-1: never).
    recoveries: list[float] = field(default_factory=list)


def _swallow_twice(
    proxy: ChaosProxy, producer: Producer, worker: WorkerProcess, scale: Scale, rounds: Rounds
) -> None:
    """Swallow a claim's reply while idle, then every reply for a while under load."""
    swallowed = _swallow_a_claim(proxy, producer, worker)
    rounds.orphans += swallowed
    rounds.recoveries.append(_recovery(worker))
    # Before anything else disturbs the worker: it must let go of them.
    rounds.kept += _kept_after(worker, swallowed, ORPHAN_LIMIT)
    time.sleep(CALM)
    _disrupt(proxy.swallow_replies, proxy.stop_swallowing, scale.net_disruption)


def _disrupt(start: Callable[[], object], end: Callable[[], object], seconds: float) -> None:
    """Misbehave for ``seconds`` (the disruption's length is the point of the sleep)."""
    start()
    try:
        time.sleep(seconds)
    finally:
        end()


def _swallow_a_claim(proxy: ChaosProxy, producer: Producer, worker: WorkerProcess) -> list[str]:
    """Make ``worker`` claim jobs whose claim reply is swallowed; return their ids.

    The worker is let go idle first, and only replies that carry rows are swallowed:
    an idle worker's first such reply once jobs arrive is that of a claim. It finds the
    jobs by polling (the notification carries no rows but goes to another connection).
    """
    producer.pause()
    try:
        wait_until(
            lambda: (
                not with_cursor(counts.held_by, worker.name_prefix)
                and not with_cursor(counts.waiting, RECORD)
            ),
            timeout=30,
            what="the worker to be idle",
        )
        proxy.swallow_replies(after_rows=True)
        try:
            tasks.chaos_record.delay_many([(JOB_SECONDS,)] * BURST)
            claimed: list[str] = wait_until(
                lambda: with_cursor(counts.held_by, worker.name_prefix),
                timeout=10,
                what="a claim by the worker whose reply is swallowed",
            )
            return claimed
        finally:
            proxy.stop_swallowing()
    finally:
        producer.resume()


def _kept_after(worker: WorkerProcess, job_ids: list[str], timeout: float) -> int:
    """How many of ``job_ids`` are still held in ``worker``'s name after ``timeout`` s."""

    def still_held() -> set[str]:
        return set(with_cursor(counts.held_by, worker.name_prefix)) & set(job_ids)

    settle(lambda: not still_held(), timeout)
    return len(still_held())


def _recovery(worker: WorkerProcess) -> float:
    """Seconds until ``worker`` completes a job again (-1: not within the limit)."""
    since = db_now()
    began = time.monotonic()
    if not _completes_a_job(worker, since, RECOVERY_LIMIT):
        return -1.0
    return time.monotonic() - began


def _completes_a_job(worker: WorkerProcess, since: object, timeout: float) -> bool:
    return settle(
        lambda: Job.objects.filter(
            worker__startswith=worker.name_prefix, state="SUCCESS", finished_at__gt=since
        ).exists(),
        timeout,
    )
