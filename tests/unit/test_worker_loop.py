"""The worker loop, in-process: a real ``Worker`` and real pools on an in-memory store.

Each test sets a scene in the store (jobs, faults), takes the worker's steps one at a
time (``tests/fakes/driver.py``) and checks the jobs table as a user would read it.
Time is a fake clock: a worker frozen past its lease is the clock moved on, and every
back-off returns at once. Jobs that must run "while" something else happens call a
hook from inside the task, which is where the worker's other threads act meanwhile.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import djqueue
from tests.fakes.driver import WorkerDriver
from tests.fakes.store import Fault

IN_PROCESS_POOLS = ["solo", "threads"]

# What ran, in order: (tag, attempt). Jobs are claimed in the order they were sent.
RUNS: list[tuple[str, int]] = []
# Hooks jobs call while they run, by name.
HOOKS: dict[str, Callable[[], None]] = {}
# Gates a job waits at, and the events it sets when it gets there, by name.
GATES: dict[str, threading.Event] = {}
ARRIVED: dict[str, threading.Event] = {}
LONG = 30.0  # seconds a gate waits at most: a test that forgets one fails, not hangs


@djqueue.task(name="tests.unit.worker_loop.record", bind=True)
def record(self: djqueue.Task[Any, Any], tag: str) -> str:
    RUNS.append((tag, self.request.attempt))
    return tag


@djqueue.task(name="tests.unit.worker_loop.hook", bind=True)
def hook(self: djqueue.Task[Any, Any], tag: str) -> str:
    RUNS.append((tag, self.request.attempt))
    HOOKS.pop(tag)()
    return tag


@djqueue.task(name="tests.unit.worker_loop.gate", bind=True)
def gate(self: djqueue.Task[Any, Any], tag: str) -> str:
    RUNS.append((tag, self.request.attempt))
    ARRIVED[tag].set()
    assert GATES[tag].wait(LONG), f"gate {tag} was never opened"
    return tag


def ran(tag: str) -> int:
    """How many times the job tagged ``tag`` ran."""
    return sum(1 for run, _ in RUNS if run == tag)


def gated(tag: str) -> None:
    GATES[tag], ARRIVED[tag] = threading.Event(), threading.Event()


def wait_arrived(tag: str) -> None:
    assert ARRIVED[tag].wait(LONG), f"job {tag} never started"


@pytest.fixture
def make(settings: Any) -> Iterator[Callable[..., WorkerDriver]]:
    """Build started workers; after the test, open every gate and stop every pool."""
    # A main loop with nothing to gather waits this long (real time) for an event.
    settings.DJQUEUE = {**settings.DJQUEUE, "POLL_INTERVAL_SECONDS": 0.001}
    RUNS.clear()
    HOOKS.clear()
    GATES.clear()
    ARRIVED.clear()
    made: list[WorkerDriver] = []

    def build(pool: str = "solo", **options: Any) -> WorkerDriver:
        driver = WorkerDriver(pool, **options)
        driver.start()
        made.append(driver)
        return driver

    yield build
    for event in GATES.values():
        event.set()
    for driver in made:
        driver.close()


def send_records(driver: WorkerDriver, *tags: str) -> list[uuid.UUID]:
    return [driver.store.send(record.name, tag) for tag in tags]


# Claims run and finish ---------------------------------------------------------------


@pytest.mark.parametrize("pool", IN_PROCESS_POOLS)
def test_claimed_jobs_run_once_and_end_success(
    make: Callable[..., WorkerDriver], pool: str
) -> None:
    driver = make(pool, concurrency=2)
    ids = send_records(driver, "a", "b", "c", "d", "e")
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS"] * 5
    assert [driver.store.row(i).result for i in ids] == ['"a"', '"b"', '"c"', '"d"', '"e"']
    assert [driver.store.row(i).attempt for i in ids] == [1] * 5
    assert sorted(RUNS) == [("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 1)]
    assert driver.held() == set()
    driver.heartbeat()
    assert driver.store.workers[driver.name].jobs_done == 5


@pytest.mark.parametrize("pool", IN_PROCESS_POOLS)
def test_a_paused_queue_is_not_claimed_from(make: Callable[..., WorkerDriver], pool: str) -> None:
    driver = make(pool, queues=("default", "reports"))
    driver.store.paused.add("reports")
    driver.heartbeat()  # the heartbeat reads the paused queues
    held_back = driver.store.send(record.name, "report", queue="reports")
    [plain] = send_records(driver, "plain")
    driver.run_all([plain])
    assert driver.store.state(held_back) == "PENDING"
    driver.store.paused.clear()
    driver.heartbeat()
    driver.run_all([held_back])
    assert ran("report") == 1


# Outcomes the database refuses ---------------------------------------------------------


@pytest.mark.parametrize("pool", IN_PROCESS_POOLS)
def test_a_refused_outcome_ends_only_its_own_job(
    make: Callable[..., WorkerDriver], pool: str
) -> None:
    driver = make(pool)
    ids = send_records(driver, "a", "poison", "c")
    driver.store.refuse(ids[1], "SUCCESS")
    driver.run_all(ids)
    a, poison, c = (driver.store.row(i) for i in ids)
    assert (a.state, a.result, c.state, c.result) == ("SUCCESS", '"a"', "SUCCESS", '"c"')
    assert poison.state == "FAILURE"
    assert poison.error_type == "djqueue.exceptions.OutcomeNotStored"
    assert poison.error_message.startswith(
        "the job ended SUCCESS, but the database refused to store that outcome: invalid input"
    )
    assert (ran("a"), ran("poison"), ran("c")) == (1, 1, 1)
    # The worker carries on.
    [after] = send_records(driver, "after")
    driver.run_all([after])
    assert driver.store.state(after) == "SUCCESS"


def test_an_outcome_refused_even_as_a_failure_goes_back_to_the_queue(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    ids = send_records(driver, "a", "poison")
    driver.store.refuse(ids[1])  # any outcome of it, the failure that says why too
    driver.run_until(lambda: driver.store.state(ids[0]) == "SUCCESS")
    assert driver.store.row(ids[1]).state == "RECEIVED"  # held by no one now
    driver.heartbeat()
    poison = driver.store.row(ids[1])
    assert (poison.state, poison.worker) == ("PENDING", "")
    assert poison.history[-1]["outcome"] == "RELEASED"


# A lost connection ---------------------------------------------------------------------


@pytest.mark.parametrize("pool", IN_PROCESS_POOLS)
@pytest.mark.parametrize("fault", [Fault.LOST_CONNECTION, Fault.LOST_REPLY])
def test_outcomes_whose_write_was_cut_off_are_kept_and_written_once(
    make: Callable[..., WorkerDriver], pool: str, fault: Fault
) -> None:
    driver = make(pool)
    driver.store.fail("finish", fault, times=2)
    ids = send_records(driver, "a", "b", "c")
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS"] * 3
    assert [driver.store.row(i).attempt for i in ids] == [1] * 3
    assert (ran("a"), ran("b"), ran("c")) == (1, 1, 1)
    assert driver.store.called("finish") >= 3
    # It waited before trying again (a fake wait: the clock moved on).
    assert driver.clock.waited


def test_outcomes_taken_during_a_one_by_one_write_that_loses_the_connection_are_kept(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    ids = send_records(driver, "a", "poison", "c")
    driver.store.refuse(ids[1], "SUCCESS")
    # The batch is refused; one by one, the first write loses the connection.
    driver.store.during("finish", lambda: driver.store.fail("finish", Fault.LOST_CONNECTION))
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS", "FAILURE", "SUCCESS"]
    assert (ran("a"), ran("poison"), ran("c")) == (1, 1, 1)


@pytest.mark.parametrize("pool", IN_PROCESS_POOLS)
def test_a_claim_whose_reply_was_lost_goes_back_at_the_next_heartbeat(
    make: Callable[..., WorkerDriver], pool: str
) -> None:
    driver = make(pool)
    driver.store.fail("claim", Fault.LOST_REPLY)
    ids = send_records(driver, "a", "b")
    driver.step()
    # Committed, but the worker never saw them: they name it, it does not hold them.
    assert [driver.store.row(i).worker for i in ids] == [driver.name] * 2
    assert driver.store.states(ids) == ["RECEIVED"] * 2
    assert driver.held() == set()
    driver.heartbeat()
    for job_id in ids:
        row = driver.store.row(job_id)
        assert (row.state, row.worker, row.history[-1]["outcome"]) == ("PENDING", "", "RELEASED")
        assert row.max_attempts == 5  # the attempt that never ran is given back
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS"] * 2
    assert sorted(RUNS) == [("a", 2), ("b", 2)]


def test_a_lost_connection_on_claim_backs_off_and_claims_again(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    driver.store.fail("claim", Fault.LOST_CONNECTION, times=3)
    ids = send_records(driver, "a")
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS"]
    assert len(driver.clock.waited) == 3
    assert driver.clock.waited == sorted(driver.clock.waited)  # backing off


@pytest.mark.parametrize("operation", ["worker_heartbeat", "paused_queues", "rescue"])
def test_a_closed_connection_in_the_heartbeat_is_survived(
    make: Callable[..., WorkerDriver], operation: str
) -> None:
    driver = make("solo")
    ids = send_records(driver, "a", "b")
    driver.store.fail(operation, Fault.CLOSED_CONNECTION)
    resets = driver.store.resets
    driver.heartbeat()  # raises nothing: the heartbeat logs it and tries again later
    assert driver.store.resets == resets + 1
    driver.run_all(ids)
    assert driver.store.states(ids) == ["SUCCESS"] * 2


# Warm shutdown -----------------------------------------------------------------------


def test_warm_shutdown_hands_back_waiting_jobs_and_finishes_the_running_one_threads(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("threads", concurrency=1)
    gated("running")
    running = driver.store.send(gate.name, "running")
    waiting = send_records(driver, "w1", "w2", "w3")
    driver.step()
    wait_arrived("running")
    assert driver.held() == {running, *waiting}
    driver.stop_warm()
    for job_id in waiting:
        row = driver.store.row(job_id)
        assert (row.state, row.worker, row.max_attempts) == ("PENDING", "", 5)
    GATES["running"].set()
    driver.drain()
    assert driver.store.state(running) == "SUCCESS"
    assert driver.store.states(waiting) == ["PENDING"] * 3
    assert [tag for tag, _ in RUNS] == ["running"]
    assert driver.store.workers[driver.name].stopped


def test_warm_shutdown_hands_back_waiting_jobs_while_solo_runs_one(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    running = driver.store.send(hook.name, "running")
    waiting = send_records(driver, "w1", "w2")
    seen: list[list[str]] = []

    def sigterm() -> None:
        driver.stop_warm()  # the control thread acts while solo's main thread runs the job
        seen.append(driver.store.states(waiting))

    HOOKS["running"] = sigterm
    driver.step()
    driver.drain()
    assert seen == [["PENDING", "PENDING"]]
    assert driver.store.state(running) == "SUCCESS"
    assert driver.store.states(waiting) == ["PENDING", "PENDING"]
    assert [tag for tag, _ in RUNS] == ["running"]


def test_outcomes_buffered_at_shutdown_are_written_once_the_database_is_back(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("threads", concurrency=2)
    ids = send_records(driver, "a", "b")
    driver.store.fail("finish", Fault.LOST_CONNECTION, times=1000)
    driver.run_until(lambda: len(driver.worker.outcomes.buffer) == 2)  # both ran, neither written
    assert driver.store.states(ids) == ["RECEIVED", "RECEIVED"]
    driver.store.heal("finish")
    driver.store.fail("finish", Fault.LOST_CONNECTION, times=3)
    driver.worker.stop()
    driver.drain()
    assert driver.store.states(ids) == ["SUCCESS", "SUCCESS"]
    assert driver.store.workers[driver.name].stopped


# A worker frozen or cut off confirms before it starts ---------------------------------


def test_a_worker_frozen_past_its_lease_does_not_start_what_was_taken_from_it(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    first = driver.store.send(hook.name, "first")
    taken, rescued = send_records(driver, "taken", "rescued")

    def frozen() -> None:
        # SIGSTOP past the lease; meanwhile another worker rescues and claims one job.
        driver.clock.advance(driver.worker.leases.seconds + 10)
        driver.store.rescue()
        [claimed] = driver.store.claim(["default"], 1, "other-worker", 30.0)
        assert claimed.id in (first, taken)

    HOOKS["first"] = frozen
    driver.step()
    assert driver.store.called("confirm_leases") == 1
    assert ran("taken") == 0 and ran("rescued") == 0
    other = [r for r in driver.store.rows.values() if r.worker == "other-worker"]
    assert [(r.state, r.attempt) for r in other] == [("RECEIVED", 2)]
    # What the other worker did not take runs here later, under the next attempt (in a
    # process of its own: a job taken back from a lost worker may be what killed it).
    mine = [job_id for job_id in (first, taken, rescued) if job_id != other[0].id]
    driver.run_all(mine)
    assert driver.store.states(mine) == ["SUCCESS", "SUCCESS"]
    assert [driver.store.row(job_id).attempt for job_id in mine] == [2, 2]


def test_a_worker_that_cannot_confirm_its_claims_starts_none_of_them(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    first = driver.store.send(hook.name, "first")
    later = send_records(driver, "b", "c")

    def cut_off() -> None:
        # Past the time leases are trusted, not past the lease itself.
        driver.clock.advance(driver.worker.leases.trust_for + 1)
        driver.store.fail("confirm_leases", Fault.LOST_CONNECTION, times=2)

    HOOKS["first"] = cut_off
    driver.step()
    assert ran("b") == 0 and ran("c") == 0
    assert driver.held() == set()
    assert driver.store.states(later) == ["RECEIVED", "RECEIVED"]
    driver.heartbeat()  # the rows it gave up on go back to the queue
    assert driver.store.states(later) == ["PENDING", "PENDING"]
    driver.run_all([first, *later])
    assert (ran("first"), ran("b"), ran("c")) == (1, 1, 1)


def test_a_worker_whose_leases_are_fresh_starts_without_asking(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    ids = send_records(driver, "a", "b", "c")
    driver.run_all(ids)
    assert driver.store.called("confirm_leases") == 0


def test_a_slow_renewal_is_trusted_from_when_it_was_sent(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("threads", concurrency=1)
    gated("running")
    running = driver.store.send(gate.name, "running")
    [waiting] = send_records(driver, "waiting")
    driver.step()
    wait_arrived("running")
    # The renewal takes longer than leases are trusted for.
    driver.store.during(
        "renew_leases", lambda: driver.clock.advance(driver.worker.leases.trust_for + 1)
    )
    driver.heartbeat()
    GATES["running"].set()
    driver.run_all([running, waiting])
    assert driver.store.called("confirm_leases") == 1
    assert driver.store.states([running, waiting]) == ["SUCCESS", "SUCCESS"]


def test_jobs_rescued_during_a_slow_renewal_are_dropped_and_claimed_again(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("threads", concurrency=1)
    gated("running")
    running = driver.store.send(gate.name, "running")
    [waiting] = send_records(driver, "waiting")
    driver.step()
    wait_arrived("running")

    def slow() -> None:
        driver.clock.advance(driver.worker.leases.seconds + 1)
        driver.store.rescue()  # another worker's heartbeat, while the renewal hangs

    driver.store.during("renew_leases", slow)
    driver.heartbeat()
    assert driver.held() == set()
    # Back in the queue, both are claimed again while the first attempt still runs.
    driver.wake()
    driver.step()
    assert driver.held() == {running, waiting}
    assert [driver.store.row(job_id).attempt for job_id in (running, waiting)] == [2, 2]
    GATES["running"].set()
    driver.run_all([running, waiting])
    # The first attempt's late outcome was fenced off and did not end the second one;
    # the second attempts ran (in a process of their own, as rescued jobs do).
    assert RUNS == [("running", 1)]
    assert driver.store.states([running, waiting]) == ["SUCCESS", "SUCCESS"]


def test_a_late_outcome_of_an_attempt_taken_back_leaves_the_newer_claim_alone(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("threads", concurrency=1)
    gated("running")
    running = driver.store.send(gate.name, "running")
    driver.step()
    wait_arrived("running")
    driver.clock.advance(driver.worker.leases.seconds + 1)
    driver.store.rescue()  # the worker was cut off; another worker's heartbeat
    driver.heartbeat()  # the renewal tells it so: the job is forgotten
    gated("blocker")
    blocker = driver.store.send(gate.name, "blocker", priority=1)
    driver.wake()
    driver.step()  # claims the job again (attempt 2), behind the blocker in the pool
    assert driver.held() == {running, blocker}
    GATES["running"].set()
    # The first attempt's outcome reaches the loop before the second attempt starts.
    driver.run_until(lambda: driver.worker.jobs_done == 1 and ARRIVED["blocker"].is_set())
    assert driver.held() == {running, blocker}
    GATES["blocker"].set()
    driver.run_all([running, blocker])
    assert (driver.store.state(running), driver.store.row(running).attempt) == ("SUCCESS", 2)


# Leases ------------------------------------------------------------------------------


def test_leases_are_renewed_for_exactly_the_jobs_the_worker_holds(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("threads", concurrency=1)
    gated("running")
    running = driver.store.send(gate.name, "running")
    [waiting] = send_records(driver, "waiting")
    driver.step()
    wait_arrived("running")
    [elsewhere] = send_records(driver, "elsewhere")
    driver.store.claim(["default"], 1, "other-worker", 30.0)
    claimed_at = driver.clock.now()
    [orphan] = send_records(driver, "orphan")
    driver.store.fail("claim", Fault.LOST_REPLY)
    driver.wake()
    driver.step()  # a claim whose reply is lost: the orphan names this worker
    assert driver.store.row(orphan).worker == driver.name
    driver.clock.advance(10)
    driver.heartbeat()
    now = driver.clock.now()
    assert driver.store.row(running).lease_expires_at == now + driver.worker.leases.seconds
    assert driver.store.row(waiting).lease_expires_at == now + driver.worker.leases.seconds
    assert driver.store.row(elsewhere).lease_expires_at == claimed_at + 30.0
    assert (driver.store.row(orphan).state, driver.store.row(orphan).worker) == ("PENDING", "")
    GATES["running"].set()
    driver.run_all([running, waiting, orphan])


def test_a_running_job_is_marked_started_and_charged_if_its_worker_is_lost(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("threads", concurrency=1)
    gated("running")
    running = driver.store.send(gate.name, "running", max_attempts=1)
    [waiting] = send_records(driver, "waiting")
    driver.step()
    wait_arrived("running")
    driver.clock.advance(1)
    driver.mark_started()
    assert driver.store.states([running, waiting]) == ["STARTED", "RECEIVED"]
    # The worker is lost: its leases run out and a rescue finds them.
    driver.clock.advance(driver.worker.leases.seconds + 1)
    driver.store.rescue()
    lost = driver.store.row(running)
    assert (lost.state, lost.error_type) == ("FAILURE", "djqueue.exceptions.WorkerLostError")
    assert (driver.store.state(waiting), driver.store.row(waiting).max_attempts) == ("PENDING", 5)
    GATES["running"].set()


# Revocation --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["notification", "heartbeat"])
def test_a_buffered_job_revoked_before_it_starts_never_runs(
    make: Callable[..., WorkerDriver], how: str
) -> None:
    driver = make("solo")
    first = driver.store.send(hook.name, "first")
    revoked, other = send_records(driver, "revoked", "other")

    def revoke() -> None:
        assert driver.store.revoke(revoked, terminate=True)
        if how == "notification":
            driver.revoke_notified(revoked)
        else:
            driver.heartbeat()  # the notification was missed: the renewal says so

    HOOKS["first"] = revoke
    driver.run_all([first, revoked, other])
    row = driver.store.row(revoked)
    assert (row.state, row.error_message) == ("REVOKED", "revoked before it started")
    assert ran("revoked") == 0
    assert driver.store.states([first, other]) == ["SUCCESS", "SUCCESS"]


def test_a_revoke_notification_the_row_does_not_back_is_ignored(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    first = driver.store.send(hook.name, "first")
    [named] = send_records(driver, "named")
    HOOKS["first"] = lambda: driver.revoke_notified(named)  # anyone may NOTIFY
    driver.run_all([first, named])
    assert driver.store.state(named) == "SUCCESS"
    assert ran("named") == 1


# The flush path ----------------------------------------------------------------------


def test_solo_writes_earlier_outcomes_while_a_long_job_runs(
    make: Callable[..., WorkerDriver],
) -> None:
    driver = make("solo")
    a, poison = send_records(driver, "a", "poison")
    long = driver.store.send(hook.name, "long")
    driver.store.refuse(poison, "SUCCESS")
    seen: list[list[str]] = []

    def meanwhile() -> None:
        # The control thread's flush, once the outcomes have waited long enough.
        driver.clock.advance(driver.worker.outcomes.flush_after)
        driver.flush()
        seen.append(driver.store.states([a, poison, long]))

    HOOKS["long"] = meanwhile
    driver.run_all([a, poison, long])
    assert seen == [["SUCCESS", "FAILURE", "RECEIVED"]]
    assert driver.store.states([a, poison, long]) == ["SUCCESS", "FAILURE", "SUCCESS"]


def test_solo_writes_a_batch_as_soon_as_it_is_full(
    make: Callable[..., WorkerDriver], settings: Any
) -> None:
    settings.DJQUEUE = {**settings.DJQUEUE, "FINISH_BATCH_SIZE": 2}
    driver = make("solo")
    ids = send_records(driver, *"abcdef")
    seen: list[list[str]] = []
    HOOKS["look"] = lambda: seen.append(driver.store.states(ids))
    driver.run_all([*ids, driver.store.send(hook.name, "look")])
    assert seen == [["SUCCESS"] * 6]
    assert driver.store.called("finish") == 4


def test_the_example_in_the_design_notes_runs(settings: Any) -> None:
    settings.DJQUEUE = {**settings.DJQUEUE, "POLL_INTERVAL_SECONDS": 0.001}
    page = (Path(__file__).resolve().parents[2] / "docs" / "design.md").read_text()
    section = page.split("\n## The worker loop behind a store, tested in-process\n")[1]
    code = section.split("\n## ")[0].split("```python\n")[1].split("```")[0]
    exec(code, {})
