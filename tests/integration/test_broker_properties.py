"""Property-based test of the broker: random interleavings of what several workers, an
operator and the passing of time do to the queue, with its promises checked after
every step.

A state machine (``hypothesis.stateful``) drives the broker's real statements against
the test database. Three simulated workers claim, start, finish, renew, hand back and
lose jobs; an operator revokes, retries failed jobs, forgets and prunes; time passes.
Each worker keeps what it believes it holds, as ``djqueue.worker`` does: a job leaves
it when its outcome was written (or fenced off), when a renewal did not return it, or
when the worker handed it back. Some outcomes are forged with another attempt or
another worker's name, as a late writer presumed dead would send them.

Every statement commits (``transaction=True``), so the database's ``now()`` moves as
it does for real workers; time passing is shifting every timestamp of the queue into
the past, which is what a later ``now()`` looks like to the statements.

The invariants are listed in docs/guarantees.md, "Property-based test of the broker".

The default run is small (50 examples of up to 50 steps; every tox environment that
runs the integration tests runs them, each with examples of its own). The large one
(500 examples of up to 100 steps, no time limit) runs with::

    DJQUEUE_PROPERTY_PROFILE=chaos pytest tests/integration/test_broker_properties.py
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from djqueue.client import definition
from djqueue.core import codec, conf, endings, registry, states
from djqueue.core.exceptions import qualified_name
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.db import broker, gates
from djqueue.runtime.pools import lost
from tests.testapp import tasks

WORKERS = ("w1", "w2", "w3")
QUEUES = ["default"]
LEASE = 30.0
# A lease already over when it is granted: the job can be rescued at once.
SPENT_LEASE = -1.0

# The tasks the machine sends, with the arguments of the n-th job of one enqueue:
# attempt budgets of 1, 3, 4 and unlimited, a concurrency limit of 1, and a unique key
# (two keys, so that duplicates meet and pass each other). Their code never runs:
# outcomes are built as the executor builds them.
TASKS: dict[str, tuple[definition.Task[Any, Any], Callable[[int], tuple[Any, ...]]]] = {
    "add": (tasks.add, lambda n: (n, n)),
    "fail_until_marker": (tasks.fail_until_marker, lambda n: (f"/nonexistent/{n}",)),
    "retry_then_succeed": (tasks.retry_then_succeed, lambda n: (n,)),
    "sleep_unlimited": (tasks.sleep_unlimited, lambda n: (0,)),
    "one_at_a_time": (tasks.one_at_a_time, lambda n: (0,)),
    "unique_report": (tasks.unique_report, lambda n: (n % 2,)),
}

# When the jobs of an enqueue are due: now, in a minute, or now but expiring in 30 s.
WHEN: dict[str, dict[str, Any]] = {
    "now": {},
    "countdown": {"countdown": 60},
    "expires": {"expires": 30},
}

# Columns that hold moments: shifted together when time passes.
MOMENTS = (
    "eta",
    "expires_at",
    "enqueued_at",
    "started_at",
    "finished_at",
    "lease_expires_at",
    "unique_until",
    "revoke_requested_at",
    "retried_at",
)

Row = dict[str, Any]
Rows = dict[uuid.UUID, Row]

# The default run takes some seconds; the chaos run some minutes. Either may take
# minutes more to shrink a failing example to a short one.
PROFILES = {
    "default": settings(
        max_examples=50,
        stateful_step_count=50,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    ),
    "chaos": settings(
        max_examples=500,
        stateful_step_count=100,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    ),
}
PROFILE = os.environ.get("DJQUEUE_PROPERTY_PROFILE", "default")


@dataclasses.dataclass
class Held:
    """What a worker knows of a job it claimed."""

    job: ClaimedJob
    started: bool = False
    revoke_asked: bool = False  # a renewal said revoke(terminate=True) asked to stop it


# Reading and moving the table ---------------------------------------------------------


def read_rows() -> Rows:
    """Every job row, by id, as a dict of its columns."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM djqueue_job")
        names = [column.name for column in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _on_last_started_attempt(row: dict[str, Any]) -> bool:
    return bool(
        row["state"] == states.STARTED
        and row["max_attempts"] is not None
        and row["attempt"] >= row["max_attempts"]
    )


def lapsed_leases() -> set[uuid.UUID]:
    """Held jobs whose lease is over by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM djqueue_job WHERE state IN ('RECEIVED', 'STARTED') "
            "AND lease_expires_at < now()"
        )
        return {row[0] for row in cursor.fetchall()}


def finished_before(seconds: float) -> set[uuid.UUID]:
    """Jobs that finished more than ``seconds`` ago by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM djqueue_job WHERE finished_at < now() - make_interval(secs => %s)",
            [seconds],
        )
        return {row[0] for row in cursor.fetchall()}


def shift_time(seconds: float) -> None:
    """Move every moment of the queue ``seconds`` into the past: time passes."""
    moved = ", ".join(f"{name} = {name} - make_interval(secs => %s)" for name in MOMENTS)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE djqueue_job SET {moved}", [seconds] * len(MOMENTS))


def empty_queue() -> None:
    """Delete every job, limit, group and worker row (a few rows: cheaper than TRUNCATE)."""
    with connection.cursor() as cursor:
        for table in ("djqueue_job", "djqueue_limit", "djqueue_group", "djqueue_worker"):
            cursor.execute(f"DELETE FROM {table}")


def unchanged_but(before: Rows, after: Rows, ids: set[uuid.UUID]) -> bool:
    """Whether every row but ``ids`` is as it was (none appeared or vanished)."""
    return before.keys() == after.keys() and all(
        before[job_id] == after[job_id] for job_id in before if job_id not in ids
    )


def holds(row: Row | None, worker: str, attempt: int) -> bool:
    """Whether ``row`` is held by ``worker`` under ``attempt`` (what every fence tests)."""
    return (
        row is not None
        and row["state"] in states.HELD
        and row["worker"] == worker
        and row["attempt"] == attempt
    )


def lasting(row: Row) -> tuple[Any, ...]:
    """What of a finished row must never change (its moments move with time)."""
    return tuple(value for name, value in row.items() if name not in MOMENTS)


# Outcomes, built as the executor and the prefork pool build them ------------------------


def may_retry(job: ClaimedJob) -> bool:
    """Whether the task's ``retry()`` would grant a retry (``Task.retry``'s own test)."""
    limit = registry.get(job.task_name).max_retries
    return limit is None or job.retries < limit


def build_outcome(held: Held, kind: str, retry_in: float) -> Outcome:
    """The outcome the worker would write for ``held`` when its run comes to ``kind``."""
    job = held.job
    if job.expired:
        return endings.revoked(job, "expired before it started")
    if job.revoked or held.revoke_asked:
        return endings.revoked(job, "revoked while running")
    if kind == "killed":
        return lost.lost_outcome(job, "was killed by signal 9 (SIGKILL)")
    if kind == states.SUCCESS:
        return Outcome(
            job.id,
            job.attempt,
            job.task_name,
            states.SUCCESS,
            result=codec.dumps([job.attempt]),
            worker=job.worker,
        )
    if kind == states.RETRY and may_retry(job):
        return Outcome(
            job.id,
            job.attempt,
            job.task_name,
            states.RETRY,
            error_type=qualified_name(ConnectionError),
            error_message="service down",
            retry_in=retry_in,
            worker=job.worker,
        )
    # A failure, or a retry the task has no retries left for (retry() re-raises).
    return endings.failure(job, ConnectionError("service down"))


def expected_state(outcome: Outcome, row: dict[str, Any]) -> str:
    """The state a written ``outcome`` leaves: a kill too many quarantines the job, and
    a retry asked for on the last attempt fails it (retries and lost runs share one
    budget of attempts)."""
    limit = conf.get("QUARANTINE_AFTER_KILLS")
    if outcome.killed and limit is not None and row["kills"] + 1 >= int(limit):
        return states.FAILURE
    if (
        outcome.state == states.RETRY
        and row["max_attempts"] is not None
        and outcome.attempt >= row["max_attempts"]
    ):
        return states.FAILURE
    return outcome.state


def forge(job: ClaimedJob, how: str) -> ClaimedJob:
    """``job`` as a late writer would know it: under another attempt, or another worker."""
    if how == "another worker":
        other = WORKERS[(WORKERS.index(job.worker) + 1) % len(WORKERS)]
        return dataclasses.replace(job, worker=other)
    return dataclasses.replace(job, attempt=job.attempt + (-1 if "earlier" in how else 1))


@contextmanager
def limited_first(first: bool) -> Iterator[None]:
    """Claim limited jobs before plain ones, or after: the claim's choice by the clock,
    pinned so that an example replays the same way."""
    with mock.patch.object(gates, "due", return_value=first):
        yield


# The machine ------------------------------------------------------------------------------

picks = st.integers(min_value=0, max_value=10_000)
# What becomes of claimed jobs at once: they wait in the worker's buffer, free pool
# slots start them (the start recorded at once or not yet), or the claim's reply is
# lost on the way: the rows are claimed and the worker never hears of them.
AFTER_CLAIM = ["buffered", "started", "started, recorded", "reply lost"]
# How a late writer's outcome differs from what the worker holds (None: it is the
# worker's own outcome). Twice None: a job's own progress is what most steps are.
FORGERIES = [None, None, "an earlier attempt", "a later attempt", "another worker"]
ACTIONS = [
    "revoke",
    "revoke and terminate",
    "retry",
    "forget",
    "prune all finished",
    "prune older than a minute",
]
workers = st.sampled_from(WORKERS)


class BrokerMachine(RuleBasedStateMachine):
    """Workers, an operator and time acting on the queue, in any order."""

    def __init__(self) -> None:
        super().__init__()
        empty_queue()
        self.held: dict[str, dict[uuid.UUID, Held]] = {worker: {} for worker in WORKERS}
        self.sent: set[uuid.UUID] = set()  # every job ever enqueued
        self.deleted: set[uuid.UUID] = set()  # pruned or forgotten (they were finished)
        self.finished: dict[uuid.UUID, tuple[Any, ...]] = {}  # final rows, as they ended
        self.attempts: dict[uuid.UUID, int] = {}  # highest attempt seen per job

    def teardown(self) -> None:
        empty_queue()

    # Choosing --------------------------------------------------------------------------

    def held_jobs(self) -> list[tuple[str, Held]]:
        """``(worker, held)`` of jobs workers believe they hold, in a stable order."""
        return [
            (worker, held) for worker in WORKERS for _, held in sorted(self.held[worker].items())
        ]

    def present(self) -> list[uuid.UUID]:
        return sorted(self.sent - self.deleted)

    def forget_held(self, worker: str, job_ids: Sequence[uuid.UUID]) -> None:
        for job_id in job_ids:
            self.held[worker].pop(job_id, None)

    # Workers ---------------------------------------------------------------------------

    @initialize(names=st.lists(st.sampled_from(sorted(TASKS)), min_size=1, max_size=4))
    def first_jobs(self, names: list[str]) -> None:
        """Jobs due now, so that workers have something to take from the first step."""
        for name in names:
            self.enqueue(name, 1, "now")

    @rule(
        name=st.sampled_from(sorted(TASKS)),
        count=st.integers(min_value=1, max_value=3),
        when=st.sampled_from(sorted(WHEN)),
    )
    def enqueue(self, name: str, count: int, when: str) -> None:
        task, arguments = TASKS[name]
        calls = [arguments(n) for n in range(count)]
        results = task.delay_many(calls, **WHEN[when])
        ids = {uuid.UUID(result.id) for result in results}
        # A duplicate of a waiting unique job stands for that job: no new row.
        assert ids <= read_rows().keys(), "enqueue returned ids of jobs that do not exist"
        self.sent |= ids

    @rule(
        worker=workers,
        limit=st.integers(min_value=1, max_value=3),
        lease=st.sampled_from([LEASE, SPENT_LEASE]),
        first=st.booleans(),
        then=st.sampled_from(AFTER_CLAIM),
    )
    def claim(self, worker: str, limit: int, lease: float, first: bool, then: str) -> None:
        """Claim jobs; ``then`` says what becomes of them right after (see AFTER_CLAIM)."""
        before = read_rows()
        with limited_first(first):
            jobs = broker.claim(QUEUES, limit, worker, lease, limited=True)
        after = read_rows()
        assert len(jobs) <= limit
        for job in jobs:
            was, now = before[job.id], after[job.id]
            assert was["state"] in states.WAITING, f"claimed a job that was {was['state']}"
            assert (now["state"], now["worker"]) == (states.RECEIVED, worker)
            assert job.attempt == now["attempt"] == was["attempt"] + 1
        assert unchanged_but(before, after, {job.id for job in jobs})
        if then == "reply lost":
            return
        self.held[worker].update((job.id, Held(job, started=then != "buffered")) for job in jobs)
        if then == "started, recorded":
            for job in jobs:
                self.mark_started(worker, job)

    @precondition(lambda self: self.held_jobs())
    @rule(
        pick=picks,
        record=st.booleans(),
        kind=st.sampled_from([states.SUCCESS, states.FAILURE, states.RETRY, "killed"]),
        retry_in=st.sampled_from([0.0, 60.0]),
        forged=st.sampled_from(FORGERIES),
    )
    def work(self, pick: int, record: bool, kind: str, retry_in: float, forged: str | None) -> None:
        """A worker moves one of its jobs on: a pool slot starts it (the start is
        recorded now or not yet), or, once started, it ends and the worker writes its
        outcome (``kind``) and forgets it. Or a late writer's outcome for it arrives,
        ``forged`` with another attempt or worker; the job's worker knows nothing of it."""
        choices = self.held_jobs()
        worker, held = choices[pick % len(choices)]
        if forged is not None:
            self.write(build_outcome(Held(forge(held.job, forged), started=True), kind, retry_in))
        elif not held.started:
            held.started = True
            if record:
                self.mark_started(worker, held.job)
        else:
            self.write(build_outcome(held, kind, retry_in))
            self.forget_held(worker, [held.job.id])

    def mark_started(self, worker: str, job: ClaimedJob) -> None:
        """Record the start; check that it lands iff the row is received under its fence."""
        before = read_rows()
        broker.mark_started(worker, [(job.id, job.attempt, 0.5)])
        after = read_rows()
        # The worker may believe in a job taken from it since (and finished and deleted).
        was = before.get(job.id)
        if holds(was, worker, job.attempt) and was is not None and was["state"] == "RECEIVED":
            assert after[job.id]["state"] == states.STARTED
            assert unchanged_but(before, after, {job.id})
        else:
            assert after == before, "a start fenced off changed the queue"

    def write(self, outcome: Outcome) -> None:
        """Write ``outcome``; check that it lands iff its row is held under its fence."""
        before = read_rows()
        stale = broker.finish([outcome])
        after = read_rows()
        was = before.get(outcome.job_id)
        if not holds(was, outcome.worker, outcome.attempt):
            assert stale == {outcome.job_id}
            assert after == before, "an outcome fenced off changed the queue"
            return
        assert was is not None
        assert stale == set()
        assert after[outcome.job_id]["state"] == expected_state(outcome, was)
        assert unchanged_but(before, after, {outcome.job_id})

    @rule(worker=workers, lease=st.sampled_from([LEASE, SPENT_LEASE]), orphans=st.booleans())
    def heartbeat(self, worker: str, lease: float, orphans: bool) -> None:
        """The worker renews exactly the jobs it holds and drops those not renewed; then,
        with ``orphans``, hands back rows that name it but that it does not hold."""
        self.renew(worker, lease)
        if orphans:
            self.release_orphans(worker)

    def renew(self, worker: str, lease: float) -> None:
        owned = [(job_id, held.job.attempt) for job_id, held in sorted(self.held[worker].items())]
        before = read_rows()
        renewed = broker.renew_leases(worker, lease, owned)
        after = read_rows()
        ours = {job_id for job_id, attempt in owned if holds(before.get(job_id), worker, attempt)}
        assert renewed.keys() == ours, "a renewal missed a held job or renewed another"
        for job_id, asked in renewed.items():
            assert asked == (before[job_id]["revoke_requested_at"] is not None)
            assert after[job_id]["state"] == before[job_id]["state"]
            self.held[worker][job_id].revoke_asked = asked
        assert unchanged_but(before, after, ours)
        self.forget_held(worker, [job_id for job_id, _ in owned if job_id not in renewed])

    def release_orphans(self, worker: str) -> None:
        held = sorted(self.held[worker])
        before = read_rows()
        count = broker.release_orphans(worker, held)
        after = read_rows()
        found = {
            job_id
            for job_id, row in before.items()
            if row["state"] in states.HELD and row["worker"] == worker and job_id not in held
        }
        # A started one on its last attempt has its lease ended, for rescue to fail it.
        spent = {job_id for job_id in found if _on_last_started_attempt(before[job_id])}
        orphans = found - spent
        assert count == len(orphans)
        for job_id in orphans:
            assert (after[job_id]["state"], after[job_id]["worker"]) == (states.PENDING, "")
        for job_id in spent:
            assert after[job_id]["state"] == before[job_id]["state"]
            assert after[job_id]["lease_expires_at"] < timezone.now()  # over: rescue takes it
        assert unchanged_but(before, after, found)

    @precondition(lambda self: self.held_jobs())
    @rule(pick=picks, everything=st.booleans())
    def release(self, pick: int, everything: bool) -> None:
        """A worker hands a job back, or all it holds (a shutdown), started or not."""
        choices = self.held_jobs()
        worker, picked = choices[pick % len(choices)]
        chosen = list(self.held[worker].values()) if everything else [picked]
        handed = [(held.job.id, held.job.attempt, held.started) for held in chosen]
        before = read_rows()
        count = broker.release(worker, handed)
        after = read_rows()
        mine = {
            job_id: started
            for job_id, attempt, started in handed
            if holds(before.get(job_id), worker, attempt)
        }
        # A started job on its last attempt cannot go back: its lease is ended, and the
        # next rescue fails it as a lost job.
        spent = {
            job_id
            for job_id, started in mine.items()
            if (started or before[job_id]["state"] == states.STARTED)
            and before[job_id]["max_attempts"] is not None
            and before[job_id]["attempt"] >= before[job_id]["max_attempts"]
        }
        back = set(mine) - spent
        assert count == len(back)
        for job_id in back:
            was, now = before[job_id], after[job_id]
            assert (now["state"], now["worker"]) == (states.PENDING, "")
            ran = mine[job_id] or was["state"] == states.STARTED
            if was["max_attempts"] is not None:
                assert now["max_attempts"] == was["max_attempts"] + (0 if ran else 1)
        for job_id in spent:
            assert after[job_id]["state"] == before[job_id]["state"]
            assert after[job_id]["lease_expires_at"] < timezone.now()  # over: rescue takes it
        assert unchanged_but(before, after, back | spent)
        self.forget_held(worker, [job_id for job_id, _, _ in handed])

    # Any process, and time -------------------------------------------------------------

    @rule()
    def rescue(self) -> None:
        """Held jobs whose lease is over go back, or fail when out of attempts."""
        lapsed = lapsed_leases()
        before = read_rows()
        counts = broker.rescue()
        after = read_rows()
        assert sum(counts.values()) == len(lapsed)
        for job_id in lapsed:
            was, now = before[job_id], after[job_id]
            spent = (
                was["state"] == states.STARTED
                and was["max_attempts"] is not None
                and was["attempt"] >= was["max_attempts"]
            )
            assert now["state"] == (states.FAILURE if spent else states.PENDING)
            assert now["lost"] == was["lost"] + 1
        assert unchanged_but(before, after, lapsed)

    @rule(seconds=st.sampled_from([1.0, 45.0, 3600.0]))
    def time_passes(self, seconds: float) -> None:
        shift_time(seconds)

    # The operator ----------------------------------------------------------------------

    @precondition(lambda self: self.present())
    @rule(
        action=st.sampled_from(ACTIONS),
        pick=picks,
        mask=st.integers(min_value=1, max_value=2**12 - 1),
    )
    def operate(self, action: str, pick: int, mask: int) -> None:
        """The operator revokes a job (``pick``), retries jobs (``mask`` chooses them,
        failed or not), forgets a job, or prunes finished jobs."""
        choices = self.present()
        if action.startswith("revoke"):
            self.revoke(choices[pick % len(choices)], terminate=action.endswith("terminate"))
        elif action == "retry":
            self.retry_failed([job_id for index, job_id in enumerate(choices) if mask >> index & 1])
        elif action == "forget":
            self.forget(choices[pick % len(choices)])
        else:
            self.prune(0.0 if action == "prune all finished" else 60.0)

    def revoke(self, job_id: uuid.UUID, terminate: bool) -> None:
        before = read_rows()
        done = broker.revoke(job_id, terminate=terminate)
        after = read_rows()
        was = before[job_id]["state"]
        if was in states.WAITING:
            assert done and after[job_id]["state"] == states.REVOKED
        elif was in states.HELD and terminate:
            assert done and after[job_id]["revoke_requested_at"] is not None
            assert after[job_id]["state"] == was
        else:
            assert not done and after == before
        assert unchanged_but(before, after, {job_id})

    def retry_failed(self, chosen: list[uuid.UUID]) -> None:
        before = read_rows()
        count = broker.retry_failed(chosen)
        after = read_rows()
        again = {job_id for job_id in chosen if after[job_id]["state"] != before[job_id]["state"]}
        assert count == len(again)
        for job_id in again:
            assert before[job_id]["state"] == states.FAILURE
            assert after[job_id]["state"] == states.PENDING
            # An operator's explicit act: the only way out of a final state.
            self.finished.pop(job_id, None)
        assert unchanged_but(before, after, again)

    def forget(self, job_id: uuid.UUID) -> None:
        before = read_rows()
        deleted = broker.forget(job_id)
        after = read_rows()
        assert deleted == (before[job_id]["state"] in states.READY)
        if deleted:
            assert after.keys() == before.keys() - {job_id}
            self.deleted.add(job_id)
        else:
            assert after == before

    def prune(self, older_than: float) -> None:
        old = finished_before(older_than)
        before = read_rows()
        count = broker.prune(older_than)
        after = read_rows()
        gone = before.keys() - after.keys()
        assert all(before[job_id]["state"] in states.READY for job_id in gone)
        # Jobs finish seconds or hours apart: the clock moving between the two
        # statements cannot change which ones are old enough.
        assert gone == old and count == len(gone)
        self.deleted |= gone

    # Invariants ------------------------------------------------------------------------

    @invariant()
    def promises_hold(self) -> None:
        """Read the job table and check every invariant."""
        rows = read_rows()
        self.check_no_job_lost(rows)
        self.check_finished_stay(rows)
        self.check_attempts_grow(rows)
        check_holding(rows)
        check_attempt_budget(rows)
        check_kills(rows)
        check_limits(rows)
        self.check_one_holder(rows)

    def check_no_job_lost(self, rows: Rows) -> None:
        """Every job sent is there until it was deleted after finishing; no other is."""
        assert self.sent - self.deleted == rows.keys(), "a job was lost (or appeared)"
        assert all(row["state"] in states.ALL for row in rows.values())

    def check_finished_stay(self, rows: Rows) -> None:
        """A final row never changes (but for an operator's retry, handled by its rule)."""
        for job_id, ended in self.finished.items():
            if job_id in rows:
                assert lasting(rows[job_id]) == ended, "a finished job changed"
        for job_id, row in rows.items():
            if row["state"] in states.READY and job_id not in self.finished:
                self.finished[job_id] = lasting(row)

    def check_attempts_grow(self, rows: Rows) -> None:
        for job_id, row in rows.items():
            assert row["attempt"] >= self.attempts.get(job_id, 0), "attempt went down"
            self.attempts[job_id] = row["attempt"]

    def check_one_holder(self, rows: Rows) -> None:
        """No job runs twice under one attempt: of the workers that believe they hold a
        held row's attempt, there is at most one, and the row names it."""
        for job_id, row in rows.items():
            if row["state"] not in states.HELD:
                continue
            believers = {
                worker
                for worker in WORKERS
                if job_id in self.held[worker]
                and self.held[worker][job_id].job.attempt == row["attempt"]
            }
            assert believers <= {row["worker"]}, f"{believers} hold attempt {row['attempt']}"


def check_holding(rows: Rows) -> None:
    """Held iff leased; a held job names its worker, a pending one none; finished iff
    final."""
    for row in rows.values():
        held = row["state"] in states.HELD
        assert held == (row["lease_expires_at"] is not None), "held iff leased"
        assert not held or row["worker"] != "", "a held job names no worker"
        # A RETRY row keeps the worker whose attempt asked for the retry, as a final row
        # keeps the one that ended it; no statement reads it while the job waits.
        assert row["state"] != states.PENDING or row["worker"] == "", "a pending job has a worker"
        final = row["state"] in states.READY
        assert final == (row["finished_at"] is not None), "finished_at without final state"


def check_attempt_budget(rows: Rows) -> None:
    """A job never starts more often than its budget allows."""
    for row in rows.values():
        if row["state"] == states.STARTED and row["max_attempts"] is not None:
            assert row["attempt"] <= row["max_attempts"], (
                f"started attempt {row['attempt']} of {row['max_attempts']}"
            )


def check_kills(rows: Rows) -> None:
    limit = conf.get("QUARANTINE_AFTER_KILLS")
    for row in rows.values():
        if limit is not None:
            assert row["kills"] <= int(limit), "killed more often than quarantine allows"
            assert row["kills"] < int(limit) or row["state"] == states.FAILURE, (
                "a job that killed its process too often is not quarantined"
            )


def check_limits(rows: Rows) -> None:
    """Concurrency limits bound the held jobs; one waiting job per unique key."""
    held: dict[str, int] = {}
    waiting: dict[str, int] = {}
    for row in rows.values():
        key = row["concurrency_key"]
        if key is not None and row["state"] in states.HELD:
            held[key] = held.get(key, 0) + 1
            assert held[key] <= row["concurrency_limit"], f"concurrency limit of {key} passed"
        unique = row["unique_key"]
        if unique is not None and row["state"] in states.WAITING:
            waiting[unique] = waiting.get(unique, 0) + 1
            assert waiting[unique] == 1, f"two waiting jobs hold unique key {unique}"


@pytest.mark.django_db(transaction=True)
# Shrinking a failing example can take Hypothesis up to five minutes more.
@pytest.mark.timeout(0 if PROFILE == "chaos" else 900)
def test_the_broker_keeps_its_promises_in_any_interleaving() -> None:
    run_state_machine_as_test(BrokerMachine, settings=PROFILES[PROFILE])


# Examples found ---------------------------------------------------------------------------

Step = tuple[str, dict[str, Any]]


def step(rule_name: str, /, **arguments: Any) -> Step:
    return (rule_name, arguments)


def claimed(then: str, lease: float = LEASE) -> Step:
    """Worker w1 claims one job."""
    return step("claim", worker="w1", limit=1, lease=lease, first=False, then=then)


def ended(kind: str) -> Step:
    """The first held job (started) ends with ``kind`` and its outcome is written."""
    return step("work", pick=0, record=False, kind=kind, retry_in=0.0, forged=None)


# Examples that broke a promise when they were found, replayed on every run: those the
# machine found, as it shrank them, and others written after them that reach the same
# fault by another path.
FOUND: dict[str, list[Step]] = {
    # Found: rescue makes the job waiting again, but a duplicate sent while it was held
    # holds its unique key now: the whole statement fails (UniqueViolation), and with it
    # the rescue of every other lost job.
    "rescue-meets-unique-duplicate": [
        step("first_jobs", names=["unique_report"]),
        claimed("buffered", lease=SPENT_LEASE),
        step("enqueue", name="unique_report", count=1, when="now"),
        step("rescue"),
    ],
    # Found: the same collision when the worker hands the job back (the duplicate
    # need not be due yet),
    "release-meets-unique-duplicate": [
        step("first_jobs", names=["unique_report"]),
        claimed("buffered"),
        step("enqueue", name="unique_report", count=1, when="countdown"),
        step("release", pick=0, everything=False),
    ],
    # written after it: when a row the worker holds without knowing goes back,
    "orphan-meets-unique-duplicate": [
        step("first_jobs", names=["unique_report"]),
        claimed("reply lost"),
        step("enqueue", name="unique_report", count=1, when="now"),
        step("heartbeat", worker="w1", lease=LEASE, orphans=True),
    ],
    # and when the job asks for a retry.
    "retry-meets-unique-duplicate": [
        step("first_jobs", names=["unique_report"]),
        claimed("started"),
        step("enqueue", name="unique_report", count=1, when="now"),
        ended(states.RETRY),
    ],
    # Found: a started job handed back keeps its attempt, but is not failed when that
    # was its last one: it starts again, past its budget (attempt 2 of 1).
    "release-of-last-attempt-starts-again": [
        step("first_jobs", names=["fail_until_marker"]),
        claimed("started"),
        step("release", pick=0, everything=False),
        claimed("started, recorded"),
    ],
    # Written after it: a retry is granted by the retries left (the task's
    # max_retries), not by the attempts left: after a lost run, the retries take the
    # job past its budget (4 of 3).
    "retries-after-a-lost-run-pass-the-budget": [
        step("first_jobs", names=["retry_then_succeed"]),
        claimed("started, recorded", lease=SPENT_LEASE),
        step("rescue"),
        claimed("started, recorded"),
        ended(states.RETRY),
        claimed("started, recorded"),
        ended(states.RETRY),
        claimed("started, recorded"),
    ],
    # The same for a job that killed its process: it is retried while retries are left.
    "kills-after-a-lost-run-pass-the-budget": [
        step("first_jobs", names=["retry_then_succeed"]),
        claimed("started, recorded", lease=SPENT_LEASE),
        step("rescue"),
        claimed("started, recorded"),
        ended("killed"),
        step("time_passes", seconds=45.0),  # the retry of a killed job waits a little
        claimed("started, recorded"),
        ended("killed"),
        step("time_passes", seconds=45.0),
        claimed("started, recorded"),
    ],
}


def replay(steps: Sequence[Step]) -> None:
    """Run ``steps`` on a fresh machine, checking the invariants after each one, as
    Hypothesis runs an example."""
    machine = BrokerMachine()
    try:
        machine.promises_hold()
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.promises_hold()
    finally:
        machine.teardown()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", list(FOUND))
def test_examples_found_keep_the_promises(name: str) -> None:
    replay(FOUND[name])
