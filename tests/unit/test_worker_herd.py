"""Many idle workers and one job: the claims a notification of new jobs sets off.

Eight in-process workers share one in-memory store and one fake clock. Each hears the
notifications a test sends as its listener would (``WorkerDriver.hear``), and a claim
that empties the queue is delivered to all of them as the ``djqueue_drained``
notification. The store counts the claims (``djqueue.runtime.wakeups``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import djqueue
from djqueue.db import listener
from tests.fakes.clock import FakeClock
from tests.fakes.driver import WorkerDriver
from tests.fakes.store import MemoryStore

WORKERS = 8
RUNS: list[str] = []


@djqueue.task(name="tests.unit.worker_herd.record")
def record(tag: str) -> str:
    RUNS.append(tag)
    return tag


Fleet = tuple[list[WorkerDriver], MemoryStore]


@pytest.fixture
def make_fleet(settings: Any) -> Iterator[Callable[..., Fleet]]:
    """Build ``count`` started solo workers on one store, each knowing its peers."""
    made: list[WorkerDriver] = []
    RUNS.clear()

    def build(count: int = WORKERS, stagger: float = 10.0) -> Fleet:
        # No poll comes due during a test: every claim answers a notification.
        settings.DJQUEUE = {
            **settings.DJQUEUE,
            "POLL_INTERVAL_SECONDS": 3600.0,
            "WAKE_STAGGER_MS": stagger,
        }
        clock = FakeClock()
        store = MemoryStore(clock)
        fleet = [WorkerDriver("solo", clock=clock, store=store) for _ in range(count)]
        made.extend(fleet)
        for driver in fleet:
            driver.start()
            store.on_drained.append(lambda queue, d=driver: d.hear(listener.Drained(queue)))
        for driver in fleet:
            driver.heartbeat()  # counts its peers
        return fleet, store

    yield build
    for driver in made:
        driver.close()


def settle(fleet: list[WorkerDriver]) -> None:
    """Each worker takes in what it heard and acts on it: two turns of its main loop (a
    turn claims, then gathers), neither waiting for anything more."""
    for driver in fleet:
        driver.step_without_waiting()
        driver.step_without_waiting()


def send(fleet: Fleet, tag: str, listening: list[WorkerDriver] | None = None) -> uuid.UUID:
    """Send one job, notify every worker, and let ``listening`` ones (default: all) act
    until no claim is due: a follower's claim comes due on the clock, earliest first."""
    drivers, store = fleet
    awake = drivers if listening is None else listening
    job = store.send(record.name, tag)
    for driver in drivers:
        driver.hear(listener.NewJobs("default"))
    settle(awake)
    while due := [w for w in (d.worker.wakeups.due_in() for d in awake) if w is not None]:
        store.clock.advance(min(due))
        settle([d for d in awake if d.worker.wakeups.due_in() == 0])
    return job


def warm_up(fleet: Fleet) -> None:
    """Two jobs, each claimed by every worker: the first by each one's first look after
    it started, the second by each one's first answer to a notification, which tells
    one worker that it leads (it took the job) and the others that they follow."""
    send(fleet, "first")
    send(fleet, "second")


@pytest.mark.parametrize(("stagger", "claims_per_job"), [(10.0, 1), (0.0, WORKERS)])
def test_a_job_sent_to_idle_workers_costs_one_claim_once_they_know_their_parts(
    make_fleet: Callable[..., Fleet], stagger: float, claims_per_job: int
) -> None:
    fleet = make_fleet(stagger=stagger)
    store = fleet[1]
    warm_up(fleet)
    before, drained = store.called("claim"), len(store.drained)
    jobs = [send(fleet, f"job-{n}") for n in range(10)]
    assert store.states(jobs) == ["SUCCESS"] * 10
    assert sorted(RUNS) == sorted(["first", "second"] + [f"job-{n}" for n in range(10)])
    assert store.called("claim") - before == 10 * claims_per_job
    # Staggering, each claim that emptied the queue said so once.
    assert len(store.drained) - drained == (10 if stagger else 0)


def test_when_the_leader_is_gone_a_follower_takes_the_job_a_stagger_later(
    make_fleet: Callable[..., Fleet],
) -> None:
    fleet = make_fleet()
    drivers, store = fleet
    warm_up(fleet)
    (leader,) = [d for d in drivers if d.worker.wakeups.leader]
    rest = [d for d in drivers if d is not leader]
    done = {d.name: d.worker.jobs_done for d in drivers}
    before, started = store.called("claim"), store.clock.now()
    # The leader hears the next job but never turns its loop again (frozen, or gone).
    job = send(fleet, "third", listening=rest)
    assert store.state(job) == "SUCCESS"
    assert RUNS == ["first", "second", "third"]
    # One follower claimed, 10 to 20 ms later; the others heard that it emptied the queue.
    assert store.called("claim") - before == 1
    assert 0.010 <= store.clock.now() - started <= 0.020
    (taker,) = [d for d in rest if d.worker.jobs_done > done[d.name]]
    assert taker.worker.wakeups.leader


def test_two_workers_both_claim_at_once(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(count=2)
    store = fleet[1]
    warm_up(fleet)
    before, started = store.called("claim"), store.clock.now()
    send(fleet, "third")
    # Too few to stagger: an empty claim costs no more than an announcement would.
    assert store.called("claim") - before == 2
    assert store.clock.now() == started
    assert store.drained == []


def test_a_leader_without_an_idle_slot_lets_an_idle_follower_take_the_job(
    make_fleet: Callable[..., Fleet],
) -> None:
    fleet = make_fleet()
    drivers, store = fleet
    warm_up(fleet)
    (leader,) = [d for d in drivers if d.worker.wakeups.leader]
    # The leader's only slot is taken (a job it holds, not yet run).
    busy = store.send(record.name, "busy")
    leader.worker.maybe_more = True
    leader.worker.claimer.claim()
    assert leader.held() == {busy}
    job = send(fleet, "third")
    assert store.state(job) == "SUCCESS"
    # An idle follower took it (a job the leader took would wait behind "busy").
    (taker,) = [d for d in drivers if d.worker.wakeups.leader and d is not leader]
    assert store.row(job).worker == taker.name
    assert leader.held() == {busy}


def test_a_follower_whose_news_came_too_late_waits_longer_next_time(
    make_fleet: Callable[..., Fleet],
) -> None:
    fleet = make_fleet()
    drivers, store = fleet
    warm_up(fleet)
    (leader,) = [d for d in drivers if d.worker.wakeups.leader]
    follower = next(d for d in drivers if d is not leader)
    store.on_drained.clear()  # no news reaches anyone
    first = follower.worker.wakeups.stagger
    job = send(fleet, "third")
    assert store.state(job) == "SUCCESS"
    assert follower.worker.wakeups.stagger == 2 * first
    assert leader.worker.wakeups.stagger == first
