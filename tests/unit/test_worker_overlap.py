"""The main loop and the writer thread overlap: outcomes are written while the main loop
claims and hands out jobs, and a write that hangs or loses the database holds up no
claim and loses no outcome (``djqueue.runtime.outcomes``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import djqueue
from tests.fakes.driver import WorkerDriver
from tests.fakes.store import Fault

RUNS: list[str] = []
LONG = 30.0  # seconds a test waits for an event at most: a bug fails it, not hangs it


@djqueue.task(name="tests.unit.worker_overlap.record")
def record(tag: str) -> str:
    RUNS.append(tag)
    return tag


@pytest.fixture
def make(settings: Any) -> Iterator[Callable[..., WorkerDriver]]:
    """Started threads workers with their writer thread running."""
    settings.DJQUEUE = {**settings.DJQUEUE, "POLL_INTERVAL_SECONDS": 0.001}
    RUNS.clear()
    made: list[WorkerDriver] = []

    def build(**options: Any) -> WorkerDriver:
        driver = WorkerDriver("threads", concurrency=2, **options)
        driver.start()
        driver.start_writer()
        made.append(driver)
        return driver

    yield build
    for driver in made:
        driver.close()


def hold_up_next_write(driver: WorkerDriver) -> tuple[threading.Event, threading.Event]:
    """Make the next write of outcomes hang until released; return (writing, release)."""
    writing, release = threading.Event(), threading.Event()

    def hang() -> None:
        writing.set()
        assert release.wait(LONG), "the write was never released"

    driver.store.during("finish", hang)
    return writing, release


def test_the_main_loop_claims_and_runs_jobs_while_outcomes_are_written(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make()
    writing, release = hold_up_next_write(driver)
    first = driver.store.send(record.name, "first")
    driver.run_until(writing.is_set)
    # The outcome of "first" is being written (and hangs there); meanwhile the main
    # loop claims "second" and the pool runs it.
    claims = driver.store.called("claim")
    second = driver.store.send(record.name, "second")
    driver.run_until(lambda: "second" in RUNS)
    assert driver.store.called("claim") > claims
    assert driver.store.state(first) != "SUCCESS"
    release.set()
    driver.run_all([first, second])
    assert driver.store.states([first, second]) == ["SUCCESS", "SUCCESS"]
    assert RUNS == ["first", "second"]


def test_outcomes_the_writer_could_not_write_are_kept_and_written_once(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make()
    driver.store.fail("finish", Fault.LOST_CONNECTION, times=2)
    ids = [driver.store.send(record.name, tag) for tag in ("a", "b", "c")]
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS"] * 3
    assert [driver.store.row(i).attempt for i in ids] == [1] * 3
    assert sorted(RUNS) == ["a", "b", "c"]
    assert driver.clock.waited  # the writer backed off


def test_a_warm_shutdown_waits_for_the_batch_being_written(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make()
    writing, release = hold_up_next_write(driver)
    job = driver.store.send(record.name, "last")
    driver.run_until(writing.is_set)
    driver.stop_warm()
    # The shutdown ends only once that batch is written.
    threading.Timer(0.2, release.set).start()
    driver.drain()
    assert driver.store.state(job) == "SUCCESS"
    assert driver.store.workers[driver.name].stopped


def test_claims_run_at_most_one_capacity_ahead_of_the_writes(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make()  # 2 slots x PREFETCH_MULTIPLIER 4: a capacity of 8
    writing, release = hold_up_next_write(driver)
    ids = [driver.store.send(record.name, f"job-{n}") for n in range(40)]
    try:
        driver.run_until(lambda: writing.is_set() and len(RUNS) == 16)
        for _ in range(20):
            driver.step()
        # 8 held at most, and 8 more whose outcomes wait for the write that hangs.
        assert len(RUNS) == 16
        assert driver.store.states(ids).count("SUCCESS") == 0
    finally:
        release.set()
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS"] * 40
    assert sorted(RUNS) == sorted(f"job-{n}" for n in range(40))
