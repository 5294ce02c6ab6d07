"""One result listener per process: ``get()`` calls share one LISTEN connection, are
woken by their own job's finish only, and survive what other roles NOTIFY.

Finishes are played by another connection running what a worker's finish runs: the
row's UPDATE and a ``pg_notify('djqueue_done', <ids>)``, committed together. Waits use
a polling interval of a minute, so only a notification can end them in time.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, connections

import djqueue
from djqueue.db import listener, waiters
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

NO_POLLING = 60.0


@pytest.fixture(autouse=True)
def own_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A result listener started by this test, closed at its end; a fresh rejection log."""
    monkeypatch.setattr(listener, "rejected", listener.Rejections())
    waiters.close()
    yield
    waiters.close()


class Queries:
    """A Django execute wrapper counting the queries of the thread that installs it."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        try:
            return execute(sql, params, many, context)
        finally:
            with self._changed:
                self.count += 1
                self._changed.notify_all()

    def reached(self, count: int, timeout: float = 10) -> bool:
        """Wait until ``count`` queries were sent; False after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= count, timeout)


def registered(queries: Queries) -> None:
    """Wait until a get() counted by ``queries`` registered: it read once before, once
    after registering."""
    assert queries.reached(2), "get() did not start waiting"


def finish(conn: psycopg.Connection[Any], *job_ids: uuid.UUID, notify: bool = True) -> None:
    """End ``job_ids`` with result 3 from another connection, as a worker would."""
    conn.execute(
        "UPDATE djqueue_job SET state = 'SUCCESS', result = '3'::jsonb, finished_at = now() "
        "WHERE id = ANY(%s)",
        [list(job_ids)],
    )
    if notify:
        conn.execute("SELECT pg_notify('djqueue_done', %s)", [" ".join(map(str, job_ids))])
    conn.commit()


def send(conn: psycopg.Connection[Any], channel: str, payload: str) -> None:
    conn.execute("SELECT pg_notify(%s, %s)", [channel, payload])
    conn.commit()


def listen_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = 'LISTEN \"djqueue_done\"'"
        )
        return [row[0] for row in cursor.fetchall()]


def soon(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + 10
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as made:
        yield made


def get_in_thread(result: Any, queries: Queries, timeout: float = 20) -> Any:
    """``result.get()`` with this thread's queries counted; its connection closed after."""
    try:
        with connection.execute_wrapper(queries):
            return result.get(timeout=timeout, interval=NO_POLLING)
    finally:
        connections.close_all()


def test_get_returns_when_another_connection_finishes_the_job(
    other_connection: psycopg.Connection[Any], pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    result = tasks.add.delay(1, 2)
    queries = Queries()
    finisher = pool.submit(lambda: (registered(queries), finish(other_connection, result.id)))

    with connection.execute_wrapper(queries):
        assert result.get(timeout=10, interval=NO_POLLING) == 3
    finisher.result()


def test_many_waits_share_one_connection(
    other_connection: psycopg.Connection[Any],
    pool: concurrent.futures.ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[int] = []
    real_connect = listener.connect

    def counting_connect(autocommit: bool = True) -> psycopg.Connection[Any]:
        opened.append(1)
        return real_connect(autocommit)

    monkeypatch.setattr(listener, "connect", counting_connect)
    results = tasks.add.delay_many([(1, 2)] * 20)
    counted = [Queries() for _ in results]
    gets = [pool.submit(get_in_thread, r, q) for r, q in zip(results, counted, strict=True)]
    for queries in counted:
        registered(queries)

    soon(listen_backends, "a LISTEN connection")
    assert len(listen_backends()) == 1
    finish(other_connection, *(result.id for result in results))

    assert [get.result() for get in gets] == [3] * 20
    assert len(opened) == 1


def test_an_unrelated_notification_does_not_make_a_waiter_read(
    other_connection: psycopg.Connection[Any], pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    warm_up, result = tasks.add.delay(1, 2), tasks.add.delay(1, 2)
    # Someone waits all along, so the listener stays connected between the two gets.
    with waiters.waiting([uuid.uuid4()]):
        # Once a finish woke it, the listener is connected: its first connect (which
        # wakes every waiter) is behind us.
        warming = Queries()
        pool.submit(lambda: (registered(warming), finish(other_connection, warm_up.id)))
        with connection.execute_wrapper(warming):
            warm_up.get(timeout=10, interval=NO_POLLING)

        queries = Queries()

        def others_then_ours() -> None:
            registered(queries)
            for _ in range(20):
                send(other_connection, "djqueue_done", str(uuid.uuid4()))
            send(other_connection, "djqueue_done", f"{uuid.uuid4()} {warm_up.id}")
            finish(other_connection, result.id)

        finisher = pool.submit(others_then_ours)
        with connection.execute_wrapper(queries):
            assert result.get(timeout=10, interval=NO_POLLING) == 3
        finisher.result()

    # A read before registering, one after, one when its own id was named.
    assert queries.count == 3


def test_malformed_payloads_do_not_break_waiters(
    other_connection: psycopg.Connection[Any],
    pool: concurrent.futures.ThreadPoolExecutor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = tasks.add.delay(1, 2)
    queries = Queries()

    def garbage_then_finish() -> None:
        registered(queries)
        try:
            soon(listen_backends, "a LISTEN connection")
        finally:
            connections.close_all()
        for payload in ("garbage", "\x1b[2J", f"{result.id}x", "x" * 7999):
            send(other_connection, "djqueue_done", payload)
        finish(other_connection, result.id)

    finisher = pool.submit(garbage_then_finish)
    with connection.execute_wrapper(queries):
        assert result.get(timeout=10, interval=NO_POLLING) == 3
    finisher.result()
    assert listener.rejected.count == 4
    assert "Ignored a malformed notification on channel djqueue_done" in caplog.text


def test_an_empty_payload_makes_every_waiter_read_again(
    other_connection: psycopg.Connection[Any], pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    results = tasks.add.delay_many([(1, 2)] * 3)
    counted = [Queries() for _ in results]
    gets = [pool.submit(get_in_thread, r, q) for r, q in zip(results, counted, strict=True)]
    for queries in counted:
        registered(queries)
    soon(listen_backends, "a LISTEN connection")

    # More than a notification can name: the finish says "read again", and no id.
    finish(other_connection, *(result.id for result in results), notify=False)
    send(other_connection, "djqueue_done", "")

    assert [get.result() for get in gets] == [3, 3, 3]


def test_after_a_reconnect_every_waiter_reads_again(
    other_connection: psycopg.Connection[Any], pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    result = tasks.add.delay(1, 2)
    queries = Queries()
    got = pool.submit(get_in_thread, result, queries)
    registered(queries)
    (listening,) = soon(listen_backends, "a LISTEN connection")

    # The job ends while the listener is cut off: its notification is lost.
    finish(other_connection, result.id, notify=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [listening])

    assert got.result() == 3


def test_a_group_is_woken_by_the_finishes_of_its_jobs(
    other_connection: psycopg.Connection[Any], pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    group = djqueue.group(tasks.add.s(i, i) for i in range(3)).apply_async()
    ids = [result.id for result in group.results]
    queries = Queries()

    def one_by_one() -> None:
        registered(queries)
        for job_id in ids:
            finish(other_connection, job_id)

    finisher = pool.submit(one_by_one)
    with connection.execute_wrapper(queries):
        assert group.get(timeout=10, interval=NO_POLLING) == [3, 3, 3]
    finisher.result()


def test_the_listener_closes_its_connection_soon_after_the_last_wait(
    other_connection: psycopg.Connection[Any], pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    result = tasks.add.delay(1, 2)
    queries = Queries()
    finisher = pool.submit(lambda: (registered(queries), finish(other_connection, result.id)))
    with connection.execute_wrapper(queries):
        result.get(timeout=10, interval=NO_POLLING)
    finisher.result()

    # A test database, for one, must be free to be dropped right after the tests.
    soon(lambda: not listen_backends(), "the LISTEN connection to close")
