"""djqueue through PgBouncer in transaction pooling mode (Debian's ``pgbouncer``).

Each test starts its own PgBouncer (tests/acceptance/pgbouncer.py) in front of the test
server; skipped, with the reason, where the program is not installed. The default suite
runs the first two; ``--pgbouncer-full`` (or ``DJQUEUE_PGBOUNCER_FULL=1``) runs the
polling fallbacks too.
"""

from __future__ import annotations

import datetime
import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from djqueue.db import sql
from djqueue.db.models import IntervalSchedule, Job, PeriodicRun, PeriodicTask
from tests.acceptance import pgbouncer
from tests.acceptance.conftest import REPO_ROOT, WorkerProcess, Workers, _free_port, wait_until
from tests.testapp import tasks

NOOP = "tests.testapp.tasks.noop"

pytestmark = pytest.mark.pgbouncer


@pytest.fixture
def bouncer() -> Iterator[pgbouncer.PgBouncer]:
    """A private PgBouncer in transaction mode in front of the test server."""
    reason = pgbouncer.unavailable()
    if reason:
        pytest.skip(f"no PgBouncer: {reason}")
    with pgbouncer.running() as started:
        yield started


def test_transaction_pooling_shares_server_connections_and_loses_prepared_statements(
    bouncer: pgbouncer.PgBouncer,
) -> None:
    """What djqueue must live with: two clients, one idle server connection between them.

    Session state (a backend, its prepared statements) passes from client to client
    between transactions; so a statement one client prepares collides with another's
    (PgBouncer before 1.21 does not track them).
    """
    with bouncer.connect() as first, bouncer.connect() as second:
        first_backend = first.execute("SELECT pg_backend_pid()").fetchone()
        assert second.execute("SELECT pg_backend_pid()").fetchone() == first_backend
        first.execute("SELECT %s::int + 1", [1], prepare=True)
        if pgbouncer.version() >= (1, 21):
            pytest.skip("this PgBouncer may track prepared statements (max_prepared_statements)")
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            second.execute("SELECT %s::int + 2", [1], prepare=True)


# A process of this project that sends jobs and reads the admin's overview JSON, with
# the queue database (DATABASES) through PgBouncer: prints what it got as JSON.
CLIENT = """
import json, sys
import django
django.setup()
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import resolve, reverse
from djqueue.core import conf
from tests.testapp import tasks

ids = [str(tasks.add.delay(i, i).id) for i in range(int(sys.argv[1]))]
ids += [str(r.id) for r in tasks.add.delay_many([(i, 1) for i in range(int(sys.argv[1]))])]
url = reverse("admin:djqueue_overview_data")
request = RequestFactory().get(url)
request.user = User(username="admin", is_superuser=True, is_staff=True, is_active=True)
response = resolve(url).func(request)
print(json.dumps({
    "ids": ids,
    "prepared": conf.prepared_statements()[0],
    "overview_status": response.status_code,
    "overview": json.loads(response.content),
}))
"""


def _run(workers: Workers, env: dict[str, str], *argv: str) -> tuple[str, float]:
    """Run ``python ARGV`` as a process like the workers' (its environment: ``env``);
    its output and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=REPO_ROOT,
        env=workers._env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, time.monotonic() - started


def _run_client(workers: Workers, env: dict[str, str], jobs: int) -> dict[str, Any]:
    """Run :data:`CLIENT` as a process like the workers' (its environment: ``env``)."""
    out, _ = _run(workers, env, "-c", CLIENT, str(jobs))
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def _cli(workers: Workers, env: dict[str, str], *args: str) -> tuple[str, float]:
    """Run ``manage.py djqueue ARGS`` as a process like the workers'; its output and
    how long it took."""
    return _run(workers, env, "-m", "django", "djqueue", *args)


def _through(
    bouncer: pgbouncer.PgBouncer, listen_dsn: str = "", poll: str = "0.5"
) -> dict[str, str]:
    """The environment of a process whose DATABASES goes through ``bouncer``."""
    return {
        "PGPORT": str(bouncer.port),
        "DJQUEUE_LISTEN_DSN": listen_dsn,
        "DJQUEUE_POLL_SECONDS": poll,
    }


def _direct_dsn() -> str:
    return f"host=127.0.0.1 port=5432 user=postgres dbname={connection.settings_dict['NAME']}"


def _all_succeed(ids: list[str], timeout: float) -> None:
    wait_until(
        lambda: Job.objects.filter(id__in=ids, state="SUCCESS").count() == len(ids),
        timeout=timeout,
        what=f"{len(ids)} jobs to succeed",
        interval=0.1,
    )


@pytest.mark.django_db(transaction=True)
def test_worker_beat_admin_and_delay_through_pgbouncer_listen_direct(
    bouncer: pgbouncer.PgBouncer, workers: Workers
) -> None:
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    every_second = PeriodicTask.objects.create(
        name="through-pgbouncer", task=NOOP, interval=interval
    )
    # A long poll interval: a job picked up soon after it is sent was woken by NOTIFY,
    # heard on the direct LISTEN_DSN connection.
    env = _through(bouncer, listen_dsn=_direct_dsn(), poll="30")
    worker = workers.start("-P", "threads", "-c", "4", env=env)
    # The beat reads the periodic tasks only every 30 s unless a notification wakes it.
    beat = _beat(workers, env, "--max-interval", "30")

    sent = _run_client(workers, env, jobs=50)
    assert sent["prepared"] is False, "auto: LISTEN_DSN is set, so no prepared statements"
    assert sent["overview_status"] == 200
    # The overview, read through the pooler, sees the live worker.
    assert sent["overview"]["workers"]["live"] == 1, sent["overview"]
    _all_succeed(sent["ids"], timeout=20)
    assert sorted(
        Job.objects.filter(id__in=sent["ids"]).values_list("result", flat=True)
    ) == sorted([2 * i for i in range(50)] + [i + 1 for i in range(50)])

    # The console through the pooler: the live worker, and its answer to a ping.
    status, _ = _cli(workers, env, "status")
    assert "Workers alive: 1" in status and worker.hostname in status, status
    pong, _ = _cli(workers, env, "ping")
    assert f"{worker.hostname}." in pong and "pong" in pong, pong

    # Pick-up by notification, not by the 30 s poll.
    late = tasks.add.delay(20, 22)
    sent_at = time.monotonic()
    _all_succeed([str(late.id)], timeout=10)
    assert time.monotonic() - sent_at < 5, "woken by the poll, not by NOTIFY"

    # The beat leads (its lock is on the direct connection) and its slots run.
    beat.wait_for_log("is now the leader", timeout=15)
    wait_until(
        lambda: (
            Job.objects.filter(
                id__in=PeriodicRun.objects.filter(periodic_task=every_second).values("job_id"),
                state="SUCCESS",
            ).count()
            >= 2
        ),
        timeout=20,
        what="two beat slots to run",
        interval=0.2,
    )
    slots = list(
        PeriodicRun.objects.filter(periodic_task=every_second).values_list("slot", flat=True)
    )
    assert len(slots) == len(set(slots))
    # An edit wakes the leader: heard on its direct LISTEN_DSN connection, not polled.
    saved = time.monotonic()
    PeriodicTask.objects.create(name="saved-later", task=NOOP, interval=interval)
    wait_until(lambda: _runs("saved-later"), 15, "the new task's first run")
    assert time.monotonic() - saved < 6, "read at the 30 s poll, not woken by NOTIFY"
    for process in (worker, beat):
        assert process.process.poll() is None
        assert "Traceback" not in process.log(), process.log()
        process.kill()
    # The statement timeout of djqueue's own threads is a session setting: through the
    # pooler it would stay on the server connection and follow it into other clients'
    # transactions (a web request, task code).
    assert _server_settings(bouncer, "statement_timeout") == {"0"}


def _server_settings(bouncer: pgbouncer.PgBouncer, name: str) -> set[str]:
    """The values of setting ``name`` on every server connection of the test database.

    Each of as many clients as the pool has server connections holds a transaction open,
    so each of them is on a different one.
    """
    clients = [bouncer.connect(connection.settings_dict["NAME"]) for _ in range(bouncer.pool_size)]
    try:
        for client in clients:
            client.execute("BEGIN")
        return {str(client.execute(f"SHOW {name}").fetchone()[0]) for client in clients}
    finally:
        for client in clients:
            client.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.pgbouncer(full=True)
@pytest.mark.parametrize("listen", ["unset", "unreachable"])
def test_without_a_direct_listen_connection_polling_gets_the_jobs_done(
    bouncer: pgbouncer.PgBouncer, workers: Workers, listen: str
) -> None:
    # Unset: LISTEN goes through PgBouncer, where notifications never arrive. Unreachable:
    # nothing listens on that port. Either way the worker polls every 0.5 s.
    dsn = "" if listen == "unset" else f"host=127.0.0.1 port={_free_port()} user=postgres"
    env = {
        **_through(bouncer, listen_dsn=dsn),
        # What docs/deployment.md says to set without LISTEN_DSN.
        "DJQUEUE_PREPARED_STATEMENTS": "false",
        "DJQUEUE_STATEMENT_TIMEOUT_SECONDS": "none",
    }
    worker = workers.start("-P", "threads", "-c", "2", env=env)
    sent = _run_client(workers, env, jobs=10)
    _all_succeed(sent["ids"], timeout=20)
    # Again, once the worker has been idle and (maybe) reconnecting for a while.
    again = _run_client(workers, env, jobs=5)
    _all_succeed(again["ids"], timeout=20)
    assert worker.process.poll() is None
    if listen == "unreachable":
        assert "Cannot LISTEN" in worker.log()
    # No notification carries a ping or its answer: the worker reads the command at its
    # next heartbeat (0.5 s here), and the sender reads the replies until they are all
    # in, well before its timeout.
    pong, took = _cli(workers, env, "ping", "--timeout", "30")
    assert f"{worker.hostname}." in pong and "pong" in pong, pong
    assert took < 15, f"the replies were read only at the timeout ({took:.1f}s)"
    worker.kill()
    # No session setting of the worker's stayed behind on the pooler's connections.
    assert _server_settings(bouncer, "statement_timeout") == {"0"}


@pytest.fixture
def one_server_connection() -> Iterator[pgbouncer.PgBouncer]:
    """A private PgBouncer with one server connection for all its clients."""
    reason = pgbouncer.unavailable()
    if reason:
        pytest.skip(f"no PgBouncer: {reason}")
    if pgbouncer.version() >= (1, 21):
        pytest.skip("this PgBouncer may track prepared statements (max_prepared_statements)")
    with pgbouncer.running(pool_size=1) as started:
        yield started


@pytest.mark.django_db(transaction=True)
def test_prepared_statements_that_the_pooler_loses_are_turned_off_by_themselves(
    one_server_connection: pgbouncer.PgBouncer, workers: Workers
) -> None:
    # The default PREPARED_STATEMENTS ("auto") and no LISTEN_DSN: nothing tells djqueue
    # there is a pooler. With one server connection for every client, the worker's
    # connections and the sender's meet each other's prepared statements at once.
    env = {**_through(one_server_connection), "DJQUEUE_STATEMENT_TIMEOUT_SECONDS": "none"}
    worker = workers.start("-P", "threads", "-c", "2", env=env)
    sent = _run_client(workers, env, jobs=20)
    assert sent["prepared"] is True, "auto without LISTEN_DSN starts with them"
    _all_succeed(sent["ids"], timeout=30)
    again = _run_client(workers, env, jobs=5)
    _all_succeed(again["ids"], timeout=30)
    log = worker.log()
    assert "refused a prepared statement" in log, log
    assert "Traceback" not in log, log
    assert worker.process.poll() is None
    worker.kill()


# runbeat through the pooler -----------------------------------------------------------

LEADER = "is now the leader"
TICK = "pooled-tick"


def _beat(workers: Workers, env: dict[str, str], *args: str) -> WorkerProcess:
    return workers.start(
        *args, entry=("-m", "django", "runbeat"), prefix="b", wait_ready=False, env=env
    )


def _runs(name: str) -> list[datetime.datetime]:
    """The slots sent for periodic task ``name``, in order."""
    return list(
        PeriodicRun.objects.filter(periodic_task__name=name)
        .order_by("slot")
        .values_list("slot", flat=True)
    )


def _leader_locks() -> int:
    """How many sessions of the test database hold the scheduler's leader lock."""
    key = sql.LEADER_LOCK
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            [key >> 32, key & 0xFFFF_FFFF],
        )
        (count,) = cursor.fetchone()
    return int(count)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "listen", ["unset", pytest.param("unreachable", marks=pytest.mark.pgbouncer(full=True))]
)
def test_beat_without_a_direct_listen_connection_leads_once_and_polls_for_edits(
    bouncer: pgbouncer.PgBouncer, workers: Workers, listen: str
) -> None:
    """Two ``runbeat`` through the pooler, ``LISTEN_DSN`` unset (or unreachable).

    One leads and the other waits: the leader lock lives in a transaction, which keeps
    its server connection, so the follower's attempts (on other server connections,
    or on the same one once the leader is gone) cannot take it too. BEAT_SCHEDULE is
    synced and fired; a task saved in the database is found by the polling fallback
    within ``--max-interval``; after kill -9 of the leader its lock is gone from the
    server and the follower takes over.
    """
    max_interval = 2.0
    dsn = "" if listen == "unset" else f"host=127.0.0.1 port={_free_port()} user=postgres"
    schedule = {TICK: {"task": NOOP, "schedule": 1, "catch_up": "all"}}
    env = {
        **_through(bouncer, listen_dsn=dsn),
        # What docs/deployment.md says to set without LISTEN_DSN.
        "DJQUEUE_PREPARED_STATEMENTS": "false",
        "DJQUEUE_STATEMENT_TIMEOUT_SECONDS": "none",
        "DJQUEUE_TEST_BEAT_SCHEDULE": json.dumps(schedule),
    }
    beats = [_beat(workers, env, "--max-interval", str(max_interval)) for _ in range(2)]
    for beat in beats:
        beat.wait_for_log("ready: waiting to lead")
    leaders = wait_until(lambda: _leading(beats), 30, "a leader")
    assert len(leaders) == 1, "both schedulers lead"
    [leader] = leaders
    [follower] = [beat for beat in beats if beat is not leader]
    # BEAT_SCHEDULE was synced; its slots are sent, while the follower keeps trying
    # (every second) and failing to lead.
    wait_until(lambda: len(_runs(TICK)) >= 4, 30, "four slots of the BEAT_SCHEDULE entry")
    assert LEADER not in follower.log(), follower.log()
    assert _leader_locks() == 1

    # An edit in the database, with nobody to hear its notification: the leader reads
    # the periodic tasks again within --max-interval.
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    saved = time.monotonic()
    PeriodicTask.objects.create(name="saved-later", task=NOOP, interval=interval)
    wait_until(lambda: _runs("saved-later"), max_interval + 10, "the new task's first run")
    # Its first slot falls a second after it was saved; the leader read it at its next
    # poll, at most --max-interval later (plus a loaded machine's delay).
    assert time.monotonic() - saved <= 1 + max_interval + 3

    leader.send(signal.SIGKILL)
    leader.wait_exit(10)
    killed_at = time.monotonic()
    # The pooler closed the leader's server connection with its transaction: the lock
    # is free at once, for the follower, not left behind on a pooled connection.
    follower.wait_for_log(LEADER, timeout=20)
    takeover = time.monotonic() - killed_at
    sent = len(_runs(TICK))
    wait_until(lambda: len(_runs(TICK)) >= sent + 2, 20, "the new leader to send slots")
    assert _leader_locks() == 1
    follower.kill()
    wait_until(lambda: _leader_locks() == 0, 10, "the leader lock to be released")
    # No session setting of the schedulers' stayed behind on the pooler's connections.
    assert _server_settings(bouncer, "statement_timeout") == {"0"}

    # "all": the new leader caught up from the last slot recorded: every second once.
    found = _runs(TICK)
    assert len(set(found)) == len(found)
    assert {b - a for a, b in itertools.pairwise(found)} == {datetime.timedelta(seconds=1)}
    assert takeover < 10, takeover
    for beat in beats:
        assert "Traceback" not in beat.log(), beat.log()
    if listen == "unreachable":
        assert "cannot LISTEN for changes to periodic tasks" in leader.log()


def _leading(beats: list[WorkerProcess]) -> list[WorkerProcess]:
    return [beat for beat in beats if beat.process.poll() is None and LEADER in beat.log()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.pgbouncer(full=True)
def test_a_frozen_leader_loses_the_lead_to_pgbouncers_idle_transaction_timeout(
    workers: Workers,
) -> None:
    """docs/deployment.md: behind PgBouncer, its ``idle_transaction_timeout`` frees the
    lock of a leader that stopped answering (SIGSTOP here; a vanished host alike), since
    a live leader's transaction is never idle for long."""
    reason = pgbouncer.unavailable()
    if reason:
        pytest.skip(f"no PgBouncer: {reason}")
    with pgbouncer.running(settings={"idle_transaction_timeout": "3"}) as bouncer:
        env = {
            **_through(bouncer),
            "DJQUEUE_PREPARED_STATEMENTS": "false",
            "DJQUEUE_STATEMENT_TIMEOUT_SECONDS": "none",
            "DJQUEUE_TEST_BEAT_SCHEDULE": json.dumps(
                {TICK: {"task": NOOP, "schedule": 1, "catch_up": "all"}}
            ),
        }
        beats = [_beat(workers, env) for _ in range(2)]
        leaders = wait_until(lambda: _leading(beats), 60, "a leader")
        assert len(leaders) == 1, "both schedulers lead"
        [leader] = leaders
        [follower] = [beat for beat in beats if beat is not leader]
        # Longer than the timeout: a live leader keeps its transaction busy.
        wait_until(lambda: len(_runs(TICK)) >= 5, 30, "five slots under the first leader")
        assert LEADER not in follower.log()

        leader.send(signal.SIGSTOP)
        follower.wait_for_log(LEADER, timeout=30)
        sent = len(_runs(TICK))
        wait_until(lambda: len(_runs(TICK)) >= sent + 2, 20, "the new leader to send slots")
        leader.send(signal.SIGCONT)
        # Woken, the old leader finds its transaction gone before it fires anything.
        leader.wait_for_log("no longer leading", timeout=30)
        log = leader.log()
        assert log.rindex("Sent ") < log.index("no longer leading"), log
        sent = len(_runs(TICK))
        wait_until(lambda: len(_runs(TICK)) >= sent + 2, 20, "more slots")
        assert _leader_locks() == 1
        assert leader.log().count(LEADER) == 1, leader.log()
        for beat in beats:
            beat.kill()
    found = _runs(TICK)
    assert len(set(found)) == len(found)
    assert {b - a for a, b in itertools.pairwise(found)} == {datetime.timedelta(seconds=1)}
