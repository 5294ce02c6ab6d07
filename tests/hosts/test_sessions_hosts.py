"""A host that vanishes leaves no session on the server: each of its sessions ends
within the link guards' time, task connections included, so that nothing a task held
(a row lock in an open transaction) stays held for the hours the system's own
keepalives take."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.acceptance.conftest import wait_until
from tests.hosts import observe
from tests.hosts.site import OnHosts
from tests.testapp import tasks

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(300)]

KEY = 4242
# Seconds within which the server must end a silent host's sessions: the suite's guards
# end them within about 4 s.
GONE_LIMIT = 30.0


def test_a_vanished_host_leaves_no_session_and_no_lock_behind(
    on_hosts: OnHosts, figures: dict[str, object]
) -> None:
    host = on_hosts.hosts[1]
    on_hosts.worker(host)
    tasks.hold_advisory_lock.delay(KEY, 600)
    wait_until(_lock_held, 60, "the task to hold its lock", 0.2)
    assert _sessions_from(host.address) >= 2

    host.cut()
    clock = observe.Stopwatch()
    try:
        wait_until(
            lambda: not _sessions_from(host.address),
            GONE_LIMIT,
            f"the server to end every session of {host.name}",
            0.2,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; left: {_described(host.address)}") from None
    figures["seconds until the server ended the host's sessions"] = clock()
    assert not _lock_held()


def _sessions_from(address: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE client_addr = %s", [address])
        return int(cursor.fetchone()[0])


def _described(address: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, left(query, 60) FROM pg_stat_activity WHERE client_addr = %s",
            [address],
        )
        return list(cursor.fetchall())


def _lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = 0 AND objid = %s",
            [KEY],
        )
        return bool(cursor.fetchone()[0])
