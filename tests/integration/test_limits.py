"""Rate and concurrency limits, enforced by the claim across all claimers."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

import djqueue
from djqueue.core import registry, states
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.db import broker, claims, gates, sql
from djqueue.db.models import Job, Limit
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def claim(limit: int = 100, worker: str = "w1") -> list[ClaimedJob]:
    return broker.claim(["default"], limit, worker, 30.0, limited=True)


def finish(job: ClaimedJob) -> None:
    broker.finish(
        [Outcome(job.id, job.attempt, job.task_name, states.SUCCESS, "null", worker=job.worker)]
    )


def age_rate_log(task_name: str, seconds: float) -> None:
    """Move every recorded start of ``task_name`` ``seconds`` into the past."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE djqueue_limit SET starts = ARRAY(SELECT s - make_interval(secs => %s) "
            "FROM unnest(starts) AS s) WHERE key = %s",
            [seconds, f"rate:{task_name}"],
        )


# Validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "complaint"),
    [
        ("10/x", "unknown unit 'x'"),
        ("0/s", "allows no starts at all"),
        ("-1/s", "allows no starts at all"),
        ("ten/s", "malformed"),
        ("1.5/s", "malformed"),
        (10, 'must be a string like "10/s"'),
    ],
)
def test_malformed_rates_fail_at_decoration(rate: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        djqueue.task(rate_limit=rate, name=f"bad.rate.{rate}")(lambda: None)
    if isinstance(rate, str):
        assert '"10/s", "100/m", "1000/h"' in str(raised.value)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"concurrency_limit": 0}, "concurrency_limit must be a whole number of 1 or more"),
        ({"concurrency_limit": True}, "concurrency_limit must be a whole number"),
        ({"concurrency_key": "k"}, "concurrency_key needs concurrency_limit"),
        ({"concurrency_limit": 1, "concurrency_key": 5}, "string template or a callable"),
        ({"unique_for": 0}, "unique_for must be more than 0 seconds"),
        ({"unique_key": 3}, "unique_key must be a string template or a callable"),
    ],
)
def test_bad_limit_options_fail_at_decoration(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        djqueue.task(name="bad.options", **options)(lambda: None)


def test_limit_options_are_stored_on_the_job() -> None:
    result = tasks.per_account.delay(7)
    row = Job.objects.get(pk=result.id)
    assert (row.gated, row.concurrency_key, row.concurrency_limit, row.rate_limit) == (
        True,
        "tests.testapp.tasks.per_account:7",
        2,
        None,
    )
    rated = Job.objects.get(pk=tasks.rate_limited.delay(1).id)
    assert (rated.gated, rated.rate_limit, rated.rate_period) == (True, 5, 1.0)
    plain = Job.objects.get(pk=tasks.add.delay(1, 2).id)
    assert (plain.gated, plain.rate_limit, plain.concurrency_key) == (False, None, None)


# The hot path ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "queues"),
    [(sql.CLAIM_ONE_QUEUE, {"queue": "default"}), (sql.CLAIM_QUEUES, {"queues": ["a", "b"]})],
)
def test_plain_claim_still_uses_the_ready_index(query: str, queues: dict[str, object]) -> None:
    with connection.cursor() as cursor:
        # As in test_broker: on a near-empty table a sequential scan is cheapest; what
        # matters is that the index's predicate (now with NOT gated) still fits.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + query, {**queues, "limit": 10, "worker": "w", "lease": 30})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "djqueue_job_ready" in plan
    assert "djqueue_job_gated" not in plan


def test_limited_claim_reads_its_own_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql.LOCK_GATES, [["default"], 1000])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "djqueue_job_gated" in plan
    assert "djqueue_job_ready" not in plan


def test_plain_claim_never_takes_limited_jobs() -> None:
    plain = {tasks.add.delay(n, n).id for n in range(3)}
    tasks.one_at_a_time.delay_many([(0,)] * 3)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.CLAIM_ONE_QUEUE, {"queue": "default", "limit": 100, "worker": "w", "lease": 30}
        )
        assert {str(row[0]) for row in cursor.fetchall()} == plain


def test_a_process_without_limited_tasks_never_takes_the_limited_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks.add.delay(1, 1)

    def fail(*args: Any) -> None:
        raise AssertionError("limited path taken")

    monkeypatch.setattr(claims, "claim_limited", fail)
    assert len(broker.claim(["default"], 100, "w1", 30.0, limited=False)) == 1
    assert broker.claim(["default"], 100, "w1", 30.0, limited=False) == []


def test_the_registry_says_whether_any_task_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_tasks", {})
    monkeypatch.setattr(registry, "_limited", set())
    djqueue.task(name="plain")(lambda: None)
    assert not registry.limited()
    djqueue.task(name="limited", rate_limit="1/s")(lambda: None)
    assert registry.limited()


# Rate limits -------------------------------------------------------------------------


def test_rate_limit_lets_through_at_most_its_count_per_period() -> None:
    tasks.rate_limited.delay_many([(n,) for n in range(12)])
    first = claim()
    assert len(first) == 5
    assert claim() == []
    assert len(Limit.objects.get(key="rate:tests.testapp.tasks.rate_limited").starts) == 5
    # A second later the window has slid past those starts.
    age_rate_log("tests.testapp.tasks.rate_limited", 1.0)
    assert len(claim()) == 5
    assert claim() == []
    age_rate_log("tests.testapp.tasks.rate_limited", 1.0)
    assert len(claim()) == 2
    # Starts older than the window are dropped from the log as it is written.
    assert len(Limit.objects.get(key="rate:tests.testapp.tasks.rate_limited").starts) == 2


def test_rate_limit_counts_starts_in_a_sliding_window() -> None:
    tasks.rate_limited.delay_many([(n,) for n in range(10)])
    assert len(claim(limit=3)) == 3
    age_rate_log("tests.testapp.tasks.rate_limited", 0.6)
    assert len(claim()) == 2  # 3 starts 0.6 s ago still count
    age_rate_log("tests.testapp.tasks.rate_limited", 0.5)
    # The first three left the window (1.1 s old); the last two (0.5 s) still count.
    assert len(claim()) == 3


def test_rate_limit_honours_priority_and_leaves_plain_jobs_alone() -> None:
    low = [tasks.rate_limited.apply_async((n,), priority=-1).id for n in range(5)]
    high = [tasks.rate_limited.apply_async((n,), priority=9).id for n in range(5)]
    plain = [tasks.add.delay(n, n).id for n in range(4)]
    claimed = {str(job.id) for job in claim()}
    assert claimed == set(high) | set(plain)
    assert claimed.isdisjoint(low)


def test_rate_limit_log_is_shared_by_all_claimers() -> None:
    tasks.rate_limited.delay_many([(n,) for n in range(10)])
    assert len(claim(limit=2, worker="a")) == 2
    assert len(claim(limit=10, worker="b")) == 3
    assert claim(worker="c") == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_start_no_more_than_the_rate() -> None:
    tasks.rate_limited.delay_many([(n,) for n in range(40)])
    claimed = _claim_in_threads(threads=4, rounds=20)
    assert len(claimed) == 5
    held = Job.objects.filter(state__in=states.HELD)
    assert held.count() == 5


# Concurrency limits ----------------------------------------------------------------


def test_concurrency_limit_one_runs_one_at_a_time() -> None:
    tasks.one_at_a_time.delay_many([(0,)] * 3)
    [first] = claim()
    assert claim() == []
    finish(first)
    [second] = claim()
    assert second.id != first.id
    assert claim() == []


def test_concurrency_key_limits_each_key_separately() -> None:
    for account in (1, 2):
        tasks.per_account.delay_many([(account,)] * 3)
    claimed = claim()
    keys = sorted(Job.objects.get(pk=job.id).concurrency_key or "" for job in claimed)
    assert (
        keys
        == ["tests.testapp.tasks.per_account:1"] * 2 + ["tests.testapp.tasks.per_account:2"] * 2
    )
    assert claim() == []


def test_a_job_under_both_limits_needs_both() -> None:
    tasks.doubly_limited.delay_many([(n,) for n in range(4)])
    [first] = claim()
    assert claim() == []  # concurrency 1
    finish(first)
    [second] = claim()
    finish(second)
    assert claim() == []  # rate 2 per minute


def test_rescued_job_frees_its_concurrency_slot() -> None:
    tasks.one_at_a_time.delay_many([(0,)] * 2)
    [first] = claim()
    Job.objects.filter(pk=first.id).update(
        lease_expires_at=timezone.now() - datetime.timedelta(hours=1)
    )
    assert broker.rescue() == {states.PENDING: 1}
    assert len(claim()) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_exceed_the_concurrency_limit() -> None:
    tasks.one_at_a_time.delay_many([(0,)] * 20)
    tasks.per_account.delay_many([(account,) for account in range(5) for _ in range(4)])
    claimed = _claim_in_threads(threads=4, rounds=10)
    running = Job.objects.filter(state__in=states.HELD)
    assert running.filter(task_name="tests.testapp.tasks.one_at_a_time").count() == 1
    for account in range(5):
        key = f"tests.testapp.tasks.per_account:{account}"
        assert running.filter(concurrency_key=key).count() == 2
    assert len(claimed) == 11


@pytest.mark.django_db(transaction=True)
def test_a_limit_locked_by_another_claimer_is_skipped_without_waiting(
    other_connection: Any,
) -> None:
    limited = tasks.one_at_a_time.delay(0)
    plain = tasks.add.delay(1, 1)
    claim_limited_row = "concurrency:tests.testapp.tasks.one_at_a_time"
    # The row a claim would create on first use; made here so that the lock below has a
    # row to hold whatever path the first claim takes.
    Limit.objects.get_or_create(key=claim_limited_row)
    other_connection.execute("BEGIN")
    other_connection.execute(
        "SELECT key FROM djqueue_limit WHERE key = %s FOR UPDATE", [claim_limited_row]
    )
    started = time.monotonic()
    claimed = [str(job.id) for job in claim()]
    assert time.monotonic() - started < 1.0, "a locked limit made the claim wait"
    assert claimed == [plain.id]
    other_connection.rollback()
    assert [str(job.id) for job in claim()] == [limited.id]


@pytest.mark.django_db(transaction=True)
def test_finishing_a_concurrency_limited_job_wakes_workers(other_connection: Any) -> None:
    tasks.one_at_a_time.delay_many([(0,)] * 2)
    [job] = claim()
    other_connection.autocommit = True
    other_connection.execute("LISTEN djqueue")
    finish(job)
    payloads = [n.payload for n in other_connection.notifies(timeout=2, stop_after=1)]
    assert payloads == ["default"]


def test_limited_jobs_are_not_starved_by_a_backlog_of_plain_jobs() -> None:
    tasks.add.delay_many([(n, n) for n in range(50)])
    limited = tasks.one_at_a_time.delay(0)
    gates.looked()
    assert limited.id not in {str(job.id) for job in claim(limit=10)}
    time.sleep(gates.INTERVAL)
    assert limited.id in {str(job.id) for job in claim(limit=10)}


def _claim_in_threads(threads: int, rounds: int) -> list[Any]:
    """Claim from ``threads`` threads (own connections) at once; return all job ids."""
    claimed: list[Any] = []
    barrier = threading.Barrier(threads)

    def run(name: str) -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                claimed.extend(job.id for job in broker.claim_limited(["default"], 3, name, 30))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(claimed) == len(set(claimed))
    return claimed
