"""Database outages: the worker logs them, reconnects (LISTEN too), and loses nothing.

The worker reaches PostgreSQL through a TCP proxy the test can cut; the test itself
enqueues on the real server, so jobs arrive while the worker is cut off.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import TcpProxy, Workers, _free_port, wait_until
from tests.testapp import tasks


def _all_succeed(count: int, timeout: float) -> None:
    wait_until(
        lambda: Job.objects.filter(state="SUCCESS").count() == count,
        timeout=timeout,
        what=f"{count} jobs to succeed",
        interval=0.1,
    )


@pytest.mark.django_db(transaction=True)
def test_worker_rides_out_a_database_outage(workers: Workers, proxy: TcpProxy) -> None:
    proxy.restore()
    # A long poll interval: after the outage only LISTEN can wake the idle worker fast.
    worker = workers.start("-c", "2", env={"PGPORT": str(proxy.port), "DJQUEUE_POLL_SECONDS": "30"})
    tasks.record_pid.delay_many([("before",)] * 20)
    _all_succeed(20, timeout=10)
    in_flight = tasks.sleep.delay_many([(1,)] * 2)
    wait_until(
        lambda: Job.objects.filter(state="STARTED").count() == 2,
        timeout=5,
        what="two jobs to be running when the database goes away",
    )

    proxy.cut()
    during = tasks.record_pid.delay_many([("during",)] * 50)
    time.sleep(3)
    assert Job.objects.filter(id__in=[r.id for r in during], state="PENDING").count() == 50
    proxy.restore()

    _all_succeed(72, timeout=20)
    worker.wait_for_log("Listening for notifications again", timeout=15)
    late = tasks.record_pid.delay("after")
    sent_at = time.monotonic()
    wait_until(
        lambda: Job.objects.filter(id=late.id, state="SUCCESS").exists(),
        timeout=3,
        what="a job sent after the outage to run",
    )
    assert time.monotonic() - sent_at < 2, "woken by the poll, not by NOTIFY"

    assert not Job.objects.exclude(state="SUCCESS").exists()
    # Leases ran out during the outage, but the worker renewed them before anyone
    # rescued them: the jobs that were running finished once, on their first attempt.
    assert set(
        Job.objects.filter(id__in=[r.id for r in in_flight]).values_list("attempt", flat=True)
    ) == {1}
    log = worker.log()
    assert "Database unavailable" in log
    assert "Database reachable again" in log
    assert "Lost the notification connection" in log
    assert worker.process.poll() is None


@pytest.mark.django_db(transaction=True)
def test_worker_started_during_an_outage_waits_for_the_database(
    workers: Workers, proxy: TcpProxy
) -> None:
    # threads: the result is the pid of the worker itself, not of a prefork child.
    worker = workers.start(
        "-P", "threads", "-c", "2", env={"PGPORT": str(proxy.port)}, wait_ready=False
    )
    worker.wait_for_log("Database unavailable")
    time.sleep(2)
    log = worker.log()
    assert " ready: pool=" not in log
    assert log.count("Database unavailable") >= 2, "it should retry"
    assert "retrying in 0.5s" in log and "retrying in 1.0s" in log, "with backoff"
    result = tasks.record_pid.delay("queued during the outage")

    proxy.restore()
    worker.wait_for_log(" ready: pool=", timeout=15)
    _all_succeed(1, timeout=10)
    assert Job.objects.get(id=result.id).result == worker.pid
    assert "Database reachable again" in worker.log()


@pytest.fixture
def silent_host() -> Iterator[int]:
    """A port that takes TCP connections and never answers, as a database host that
    vanished behind a firewall dropping its packets does to a new connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", _free_port()))
        listener.listen(64)  # never accepted: the kernel completes handshakes, nobody speaks
        yield int(listener.getsockname()[1])


@pytest.mark.django_db(transaction=True)
def test_worker_gives_up_on_a_host_that_does_not_answer(workers: Workers, silent_host: int) -> None:
    # A multi-host HOST whose first host is gone (after a failover, the old primary):
    # each new connection waits CONNECT_TIMEOUT_SECONDS there, then takes the second.
    # Without it, every connection would wait minutes on the first host.
    env = {
        "PGHOST": "127.0.0.1,127.0.0.1",
        "PGPORT": f"{silent_host},5432",
        "DJQUEUE_CONNECT_TIMEOUT_SECONDS": "2",
        # Only the LISTEN connection can wake the idle worker before its poll.
        "DJQUEUE_POLL_SECONDS": "60",
    }
    worker = workers.start("-P", "threads", "-c", "2", env=env)
    result = tasks.record_pid.delay("through the second host")
    _all_succeed(1, timeout=20)
    assert Job.objects.get(id=result.id).result == worker.pid
    assert worker.process.poll() is None
