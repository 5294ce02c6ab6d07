"""The plain claim: which jobs it takes, in which order, and how much of the table it reads.

A claim takes due jobs by priority (across all the worker's queues), then eta, then id;
jobs scheduled for later stay until they are due; and however many scheduled jobs, or due
jobs of other queues, the table holds, a claim reads only about as many rows as it takes
(djqueue/db/sql/claim.py).
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from djqueue.core import executor, states
from djqueue.db import broker, sql
from djqueue.db.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def claim(queues: list[str], limit: int, worker: str = "w1") -> list[Any]:
    return broker.claim(queues, limit, worker, 30.0, limited=True)


def send(queue: str, priority: int, minutes_ago: int) -> str:
    # At least a minute ago: the test's transaction began (its now()) before this call.
    eta = timezone.now() - datetime.timedelta(minutes=1 + minutes_ago)
    return str(tasks.add.apply_async((1, 1), queue=queue, priority=priority, eta=eta).id)


def an_hour_ago() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(hours=1)


def claim_order(queues: list[str], batch: int) -> list[str]:
    """Every due job of ``queues``, claimed ``batch`` at a time, in the order taken."""
    taken: list[str] = []
    while jobs := claim(queues, batch):
        taken += [str(job.id) for job in jobs]
    return taken


def expected_order(queues: list[str]) -> list[str]:
    rows = Job.objects.filter(queue__in=queues).order_by("-priority", "eta", "id")
    return [str(job_id) for job_id in rows.values_list("id", flat=True)]


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_several_queues_are_claimed_by_priority_then_eta_across_them(batch: int) -> None:
    # Priorities and etas interleave across the queues: no queue is wholly before another.
    for n in range(24):
        send(("a", "b", "c")[n % 3], priority=(n * 7) % 4, minutes_ago=(n * 5) % 11)
    taken = claim_order(["a", "b", "c"], batch)
    assert taken == expected_order(["a", "b", "c"])
    assert len(taken) == 24


def test_one_queue_is_claimed_by_priority_then_eta() -> None:
    for n in range(15):
        send("default", priority=(n * 3) % 5, minutes_ago=n % 4)
    assert claim_order(["default"], 4) == expected_order(["default"])


def test_a_queue_named_twice_is_claimed_once() -> None:
    for n in range(4):
        send("a", priority=n, minutes_ago=1)
    assert len(claim(["a", "a"], 10)) == 4


def test_scheduled_jobs_wait_until_due_then_are_claimed() -> None:
    later = [tasks.add.apply_async((n, n), countdown=3600, queue=q) for n, q in enumerate("abab")]
    due = [send(queue, priority=0, minutes_ago=1) for queue in ("a", "b")]
    # Higher priority but not due: passed over, not waited for.
    urgent_later = tasks.add.apply_async((0, 0), countdown=3600, queue="a", priority=9)
    assert {str(job.id) for job in claim(["a", "b"], 10)} == set(due)
    assert claim(["a"], 10) == [] and claim(["a", "b"], 10) == []
    # An hour passes.
    Job.objects.filter(state=states.PENDING).update(eta=an_hour_ago())
    taken = claim(["a", "b"], 10)
    assert str(taken[0].id) == urgent_later.id
    assert {str(job.id) for job in taken} == {r.id for r in later} | {urgent_later.id}


def test_a_retry_with_a_countdown_waits_then_is_claimed_again() -> None:
    result = tasks.always_flaky.apply_async(queue="b")
    tasks.always_flaky.retry_backoff_max = 60
    try:
        [job] = claim(["a", "b"], 10)
        broker.finish([executor.execute(job)])
    finally:
        tasks.always_flaky.retry_backoff_max = 0
    assert Job.objects.get(pk=result.id).state == states.RETRY
    plain = send("a", priority=0, minutes_ago=0)
    assert [str(job.id) for job in claim(["a", "b"], 10)] == [plain]
    Job.objects.filter(pk=result.id).update(eta=an_hour_ago())
    [again] = claim(["a", "b"], 10)
    assert (str(again.id), again.attempt, again.retries) == (result.id, 2, 1)


def test_limited_jobs_in_the_queues_are_claimed_within_their_limits() -> None:
    plain = {send(queue, priority=0, minutes_ago=1) for queue in ("a", "b", "default")}
    limited = [tasks.one_at_a_time.delay(0.0) for _ in range(3)]  # concurrency_limit=1
    with connection.cursor() as cursor:
        cursor.execute(
            sql.CLAIM_QUEUES,
            {"queues": ["a", "b", "default"], "limit": 100, "worker": "w", "lease": 30},
        )
        assert {str(row[0]) for row in cursor.fetchall()} == plain
    taken = claim(["a", "b", "default"], 10)
    assert len(taken) == 1 and str(taken[0].id) in {r.id for r in limited}


@pytest.mark.django_db(transaction=True)
def test_several_queues_lock_only_the_jobs_they_take(
    other_connection: psycopg.Connection[Any],
) -> None:
    for n in range(9):
        send(("a", "b", "c")[n % 3], priority=0, minutes_ago=n)
    with other_connection.cursor() as other:
        # Another worker is claiming the oldest job: it is skipped, not waited for.
        other.execute(
            "SELECT id FROM djqueue_job ORDER BY eta LIMIT 1 FOR UPDATE",
        )
        [(held,)] = other.fetchall()
        with transaction.atomic():
            taken = claim(["a", "b", "c"], 2)
            assert len(taken) == 2 and held not in {job.id for job in taken}
            # Still in our open transaction: every other waiting job is free to a third
            # worker (a claim that locked more than it took would hide some).
            with psycopg.connect(**other_connection.info.get_parameters()) as third:
                free = third.execute(
                    "SELECT count(*) FROM (SELECT id FROM djqueue_job WHERE state = 'PENDING'"
                    " FOR UPDATE SKIP LOCKED) AS s"
                ).fetchone()
                assert free == (6,)


# How much a claim reads -------------------------------------------------------------

# Rows inserted straight into the table, as many as make a full scan of them plain
# to see in the figures (a few hundred index pages) while keeping the test short.
_FILL = """
INSERT INTO djqueue_job (id, task_name, queue, priority, state, args, kwargs, attempt,
                         retries, eta, enqueued_at, worker, error_type, error_message,
                         traceback, gated)
SELECT gen_random_uuid(), 'tests.testapp.tasks.add', %(queue)s, n %% 3, 'PENDING', '[1, 1]',
       '{}', 0, 0, now() + make_interval(secs => %(seconds)s + n), now(), '', '', '', '', false
FROM generate_series(1, %(rows)s) AS n
"""


def fill(queue: str, rows: int, seconds: float) -> None:
    """``rows`` waiting jobs in ``queue``, due ``seconds`` from now (negative: overdue)."""
    with connection.cursor() as cursor:
        cursor.execute(_FILL, {"queue": queue, "rows": rows, "seconds": seconds})
        cursor.execute("ANALYZE djqueue_job")


# The claim statements' parameters, as a PREPARE gives them (for generic plans).
_TYPES = {"queue": "text", "queues": "text[]", "limit": "integer", "worker": "text"}


def blocks_read(query: str, params: dict[str, Any], generic: bool = False) -> tuple[int, int]:
    """Pages the claim statement read to find its jobs (any scan of the job table, but
    the look-ups by primary key of the rows it then updates), and how many jobs it
    claimed (then undone). What its UPDATE writes is left out: that grows with the jobs
    taken, not with the table.

    ``generic``: with the plan made without the parameters' values, as the worker's
    claim functions keep it (djqueue.db.sql.claim.CLAIM_FUNCTIONS).
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if generic:
            names = [
                name for name in ("queue", "queues", "limit", "worker", "lease") if name in params
            ]
            text = query
            for number, name in enumerate(names, 1):
                text = text.replace(f"%({name})s", f"${number}")
            types = ", ".join(_TYPES.get(name, "double precision") for name in names)
            cursor.execute(f"PREPARE claim_probe({types}) AS {text}")
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute("SET LOCAL jit = off")
            values = ", ".join(["%s"] * len(names))
            cursor.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE claim_probe({values})",
                [params[name] for name in names],
            )
            [[plan]] = cursor.fetchall()
            cursor.execute("DEALLOCATE claim_probe")
        else:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params)
            [[plan]] = cursor.fetchall()
        transaction.set_rollback(True)
    top = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    return sum(_pages_found(top)), top["Actual Rows"]


def _pages_found(node: dict[str, Any]) -> Iterator[int]:
    scan = node["Node Type"] != "ModifyTable" and node.get("Relation Name") == "djqueue_job"
    if scan and node.get("Index Name") != "djqueue_job_pkey":
        yield node["Shared Hit Blocks"] + node["Shared Read Blocks"]  # children included
        return
    for child in node.get("Plans", []):
        yield from _pages_found(child)


def index_pages() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size('djqueue_job_ready') / 8192")
        return int(cursor.fetchone()[0])


@pytest.mark.parametrize("generic", [False, True], ids=["custom plan", "generic plan"])
def test_a_claim_does_not_read_the_jobs_scheduled_for_later(generic: bool) -> None:
    # Queues of their own: no row an earlier test left in the index (rolled back, not
    # vacuumed yet) lies in the ranges read.
    queue, other = f"later-{uuid.uuid4()}", f"other-{uuid.uuid4()}"
    fill(queue, 60_000, seconds=86_400)  # tomorrow
    due = [send(queue, priority=p % 3, minutes_ago=1) for p in range(20)]
    assert index_pages() > 300
    params = {"queue": queue, "limit": 10, "worker": "w", "lease": 30}
    blocks, claimed = blocks_read(sql.CLAIM_ONE_QUEUE, params, generic)
    assert claimed == 10
    # The 10 rows, their index entries and a few descents per priority: tens of pages
    # (reading on through the scheduled jobs: well over a thousand).
    assert blocks < 100
    # Fewer due jobs than the batch: the scan still stops where the scheduled ones begin.
    blocks, claimed = blocks_read(sql.CLAIM_ONE_QUEUE, {**params, "limit": 100}, generic)
    assert claimed == len(due)
    assert blocks < 150
    params = {"queues": [queue, other], "limit": 10, "worker": "w", "lease": 30}
    blocks, claimed = blocks_read(sql.CLAIM_QUEUES, params, generic)
    assert claimed == 10 and blocks < 150


@pytest.mark.parametrize("generic", [False, True], ids=["custom plan", "generic plan"])
def test_a_claim_from_several_queues_reads_no_more_than_it_takes(generic: bool) -> None:
    queues = [f"backlog-{n}-{uuid.uuid4()}" for n in range(3)]
    for queue in queues:
        fill(queue, 20_000, seconds=-86_400)  # a day's backlog in each
    assert index_pages() > 300
    params = {"queues": queues, "limit": 10, "worker": "w", "lease": 30}
    blocks, claimed = blocks_read(sql.CLAIM_QUEUES, params, generic)
    assert claimed == 10
    # (Reading and sorting every due job of the three queues: thousands.)
    assert blocks < 150


def test_the_claim_functions_in_the_database_are_the_claim_statements() -> None:
    # A change to CLAIM_ONE_QUEUE or CLAIM_QUEUES needs a migration that replaces the
    # functions the worker calls: without one, this fails.
    with connection.cursor() as cursor:
        for definition in sql.CLAIM_FUNCTIONS:
            name = definition.split("FUNCTION ", 1)[1].split("(", 1)[0]
            cursor.execute("SELECT prosrc, proconfig FROM pg_proc WHERE proname = %s", [name])
            [(body, config)] = cursor.fetchall()
            assert body.strip() == definition.split("$claim$")[1].strip(), name
            assert set(config) == {"plan_cache_mode=force_generic_plan", "jit=off"}
