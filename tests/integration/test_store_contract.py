"""The in-memory store keeps the promises of the real one.

The worker loop's unit tests (``tests/unit/test_worker_loop.py``) run against
``tests.fakes.store.MemoryStore``. Each test here runs one scene against that store
and against ``DatabaseStore`` on the test database, and checks that a user reading the
jobs table would see the same in both: states, attempts, workers, attempt budgets,
leases, fences. Time never needs to pass: a lease of -1 s is over when it is granted.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Protocol

import pytest
from django.db import DataError, connection

from djqueue.core import ids
from djqueue.core.records import ClaimedJob, NewJob, Outcome
from djqueue.db import broker
from djqueue.runtime.store import DatabaseStore, Store
from tests.fakes.clock import FakeClock
from tests.fakes.store import MemoryStore

TASK = "tests.testapp.tasks.add"
LEASE = 30.0
SPENT = -1.0  # a lease over as soon as it is granted


@dataclasses.dataclass(frozen=True)
class Look:
    """What a user reads in a job's row. ``leased``: None without a lease, else
    whether it runs into the future."""

    state: str
    attempt: int
    worker: str
    max_attempts: int | None
    error_type: str
    leased: bool | None


class Table(Protocol):
    """A store, and what a test needs around it: sending, reading, operator actions."""

    @property
    def store(self) -> Store: ...

    def send(self, priority: int = 0, max_attempts: int | None = 4) -> uuid.UUID: ...

    def look(self, job_id: uuid.UUID) -> Look: ...

    def revoke(self, job_id: uuid.UUID) -> None: ...

    def pause(self, queue: str) -> None: ...


class DatabaseTable:
    def __init__(self) -> None:
        self.store = DatabaseStore()

    def send(self, priority: int = 0, max_attempts: int | None = 4) -> uuid.UUID:
        job = NewJob(ids.new_id(), TASK, "default", priority, "[1, 1]", "{}", max_attempts)
        broker.enqueue([job])
        return job.id

    def look(self, job_id: uuid.UUID) -> Look:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT state, attempt, worker, max_attempts, error_type, "
                "lease_expires_at > now() FROM djqueue_job WHERE id = %s",
                [job_id],
            )
            row = cursor.fetchone()
        assert row is not None
        return Look(*row)

    def revoke(self, job_id: uuid.UUID) -> None:
        broker.revoke(job_id, terminate=True)

    def pause(self, queue: str) -> None:
        broker.set_paused(queue, True)


class MemoryTable:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = MemoryStore(self.clock)

    def send(self, priority: int = 0, max_attempts: int | None = 4) -> uuid.UUID:
        return self.store.send(TASK, 1, 1, priority=priority, max_attempts=max_attempts)

    def look(self, job_id: uuid.UUID) -> Look:
        row = self.store.row(job_id)
        lease = row.lease_expires_at
        leased = None if lease is None else lease > self.clock.now()
        return Look(row.state, row.attempt, row.worker, row.max_attempts, row.error_type, leased)

    def revoke(self, job_id: uuid.UUID) -> None:
        self.store.revoke(job_id, terminate=True)

    def pause(self, queue: str) -> None:
        self.store.paused.add(queue)


# Committed statements: confirm_leases reads on a connection of its own.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["database", "memory"])
def table(request: pytest.FixtureRequest) -> Iterator[Table]:
    if request.param == "memory":
        yield MemoryTable()
        return
    database = DatabaseTable()
    yield database
    database.store.close()


def claim(
    table: Table, limit: int = 10, worker: str = "w1", lease: float = LEASE
) -> list[ClaimedJob]:
    return table.store.claim(["default"], limit, worker, lease, limited=False)


def outcome(job: ClaimedJob, state: str = "SUCCESS", **changes: object) -> Outcome:
    done = Outcome(job.id, job.attempt, job.task_name, state, result="2", worker=job.worker)
    return dataclasses.replace(done, **changes)  # type: ignore[arg-type]


def test_a_claim_takes_due_jobs_by_priority_then_in_order_as_received(table: Table) -> None:
    first, second = table.send(), table.send()
    urgent = table.send(priority=5)
    jobs = claim(table, limit=2)
    assert [job.id for job in jobs] == [urgent, first]
    assert [(job.attempt, job.worker, json.loads(job.args), job.isolate) for job in jobs] == [
        (1, "w1", [1, 1], False)
    ] * 2
    assert table.look(first) == Look("RECEIVED", 1, "w1", 4, "", True)
    assert table.look(second) == Look("PENDING", 0, "", 4, "", None)
    table.pause("default")
    assert table.store.paused_queues() == {"default"}


def test_a_finish_is_fenced_by_worker_and_attempt(table: Table) -> None:
    table.send()
    [job] = claim(table)
    assert table.store.finish([outcome(job, worker="w2")]) == {job.id}
    assert table.store.finish([outcome(job, attempt=job.attempt + 1)]) == {job.id}
    assert table.look(job.id).state == "RECEIVED"
    assert table.store.finish([outcome(job)]) == set()
    assert table.look(job.id) == Look("SUCCESS", 1, "w1", 4, "", None)
    assert table.store.finish([outcome(job, state="FAILURE")]) == {job.id}
    assert table.look(job.id).state == "SUCCESS"


def test_a_retry_waits_and_a_retry_on_the_last_attempt_ends_failure(table: Table) -> None:
    again, last = table.send(), table.send(max_attempts=1)
    jobs = claim(table)
    retries = [outcome(job, "RETRY", result=None, error_type="E", retry_in=0.0) for job in jobs]
    assert table.store.finish(retries) == set()
    assert table.look(again) == Look("RETRY", 1, "w1", 4, "E", None)
    assert table.look(last) == Look("FAILURE", 1, "w1", 1, "E", None)
    [retried] = claim(table)
    assert (retried.id, retried.attempt, retried.retries) == (again, 2, 1)


def test_a_refused_batch_writes_nothing(table: Table) -> None:
    table.send(), table.send()
    good, bad = claim(table)
    with pytest.raises(DataError):
        table.store.finish([outcome(good), outcome(bad, result="{not json")])
    if isinstance(table, DatabaseTable):
        connection.close()  # as the worker resets its connection after an error
    assert [table.look(job.id).state for job in (good, bad)] == ["RECEIVED", "RECEIVED"]
    with pytest.raises(DataError):
        table.store.finish([outcome(bad, "FAILURE", result=None, error_message="a\x00b")])
    assert table.store.finish([outcome(good)]) == set()
    assert table.look(good.id).state == "SUCCESS"


def test_marks_and_renewals_touch_exactly_the_held_jobs(table: Table) -> None:
    mine, theirs = table.send(), table.send()
    [job] = claim(table, limit=1)
    [other] = claim(table, limit=1, worker="w2")
    assert (job.id, other.id) == (mine, theirs)
    table.store.mark_started("w1", [(mine, 1, 0.5), (theirs, 1, 0.5), (mine, 2, 0.5)])
    assert [table.look(i).state for i in (mine, theirs)] == ["STARTED", "RECEIVED"]
    table.revoke(mine)
    held = [(mine, 1), (theirs, 1), (uuid.uuid4(), 1)]
    assert table.store.renew_leases("w1", LEASE, held) == {mine: True}
    assert table.store.confirm_leases("w1", LEASE, held) == {mine: True}
    assert table.store.renew_leases("w1", LEASE, [(mine, 2)]) == {}
    assert table.store.revoke_asked(mine, 1, "w1") is True
    assert table.store.revoke_asked(theirs, 1, "w2") is False
    assert table.store.revoke_asked(mine, 1, "w2") is False


def test_a_hand_back_gives_unstarted_attempts_back(table: Table) -> None:
    received, started, spent = table.send(), table.send(), table.send(max_attempts=1)
    jobs = claim(table)
    table.store.mark_started("w1", [(spent, 1, 0.0)])
    handed = [(received, 1, False), (started, 1, True), (spent, 1, False), (jobs[0].id, 1, False)]
    assert table.store.release("w2", handed) == 0  # not w2's to hand back
    assert table.store.release("w1", handed[:3]) == 2
    assert table.look(received) == Look("PENDING", 1, "", 5, "", None)
    assert table.look(started) == Look("PENDING", 1, "", 4, "", None)
    # A started job out of attempts stays, its lease ended: a rescue fails it.
    assert table.look(spent) == Look("STARTED", 1, "w1", 1, "", False)
    assert table.store.rescue() == {"FAILURE": 1}
    assert table.look(spent) == Look(
        "FAILURE", 1, "", 1, "djqueue.exceptions.WorkerLostError", None
    )


def test_rows_naming_a_worker_that_does_not_hold_them_go_back(table: Table) -> None:
    held, orphan, elsewhere = table.send(), table.send(), table.send()
    claim(table, limit=2)
    claim(table, worker="w2")
    assert table.store.release_orphans("w1", [held]) == 1
    assert table.look(held) == Look("RECEIVED", 1, "w1", 4, "", True)
    assert table.look(orphan) == Look("PENDING", 1, "", 5, "", None)
    assert table.look(elsewhere) == Look("RECEIVED", 1, "w2", 4, "", True)


def test_a_rescue_takes_back_expired_leases_only(table: Table) -> None:
    received, started, last, alive = (table.send(), table.send(), table.send(max_attempts=1), None)
    claim(table, lease=SPENT)
    alive = table.send()
    claim(table)
    table.store.mark_started("w1", [(started, 1, 0.0), (last, 1, 0.0)])
    assert table.store.rescue() == {"PENDING": 2, "FAILURE": 1}
    assert table.look(received) == Look("PENDING", 1, "", 5, "", None)
    assert table.look(started) == Look("PENDING", 1, "", 4, "", None)
    assert table.look(last).state == "FAILURE"
    assert table.look(alive).state == "RECEIVED"
    # A job taken back from a lost worker runs in a process of its own next time.
    assert {job.id: job.isolate for job in claim(table)} == {received: True, started: True}


def test_peers_are_the_other_live_workers_that_share_a_queue(table: Table) -> None:
    store = table.store
    store.register_worker("w1", "host", 1, "threads", 4, ["default", "mail"])
    store.register_worker("w2", "host", 2, "threads", 4, ["mail"])
    store.register_worker("w3", "host", 3, "threads", 4, ["reports"])
    store.register_worker("w4", "host", 4, "threads", 4, ["default"])
    store.worker_stopped("w4", 0)
    assert store.peers("w1", ["default", "mail"]) == 1  # w2 (mail); w4 stopped
    assert store.peers("w2", ["mail"]) == 1
    assert store.peers("w3", ["reports"]) == 0
    store.announce_drained(["default", "mail"])  # a hint: it changes no row
