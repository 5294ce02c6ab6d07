"""A frozen network link (sockets open, every packet dropped) turns into an error
within the configured time instead of a thread blocked for ever, and a listener on it
reconnects once the link is back.

Clients reach PostgreSQL through a proxy in a private network whose link the test
freezes (see tests/acceptance/network.py). Small guards keep the test short.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import pytest
from django.db import connection

from djqueue.db import listener
from tests.acceptance.conftest import TcpProxy, wait_until

T = TypeVar("T")

GUARDS = {
    "TCP_KEEPALIVE_IDLE_SECONDS": 1,
    "TCP_KEEPALIVE_INTERVAL_SECONDS": 1,
    "TCP_KEEPALIVE_COUNT": 2,
    "TCP_USER_TIMEOUT_SECONDS": 2.0,
}


def dsn(proxy: TcpProxy) -> str:
    db = connection.settings_dict
    return f"host=127.0.0.1 port={proxy.port} user={db['USER']} dbname={db['NAME']}"


@pytest.fixture
def link(private_proxy: TcpProxy, settings: Any) -> TcpProxy:
    """The proxy, with djqueue's listener connections set to go through it."""
    settings.DJQUEUE = {**settings.DJQUEUE, **GUARDS, "LISTEN_DSN": dsn(private_proxy)}
    return private_proxy


def background(fn: Callable[[], T]) -> concurrent.futures.Future[T]:
    """``fn()`` in a daemon thread: one that hangs for ever cannot hold up the tests."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


@pytest.mark.django_db(transaction=True)
def test_a_statement_on_a_frozen_link_fails_within_the_user_timeout(link: TcpProxy) -> None:
    assert link.network is not None
    guarded = link.network.run(listener.connect)
    # The same link without the guards: libpq's and the system's defaults.
    bare = link.network.run(lambda: psycopg.connect(dsn(link), autocommit=True))
    assert guarded.execute("SELECT 1").fetchone() == (1,)
    assert bare.execute("SELECT 1").fetchone() == (1,)

    link.freeze()
    started = time.monotonic()
    on_guarded = background(lambda: guarded.execute("SELECT 2").fetchone())
    on_bare = background(lambda: bare.execute("SELECT 2").fetchone())
    try:
        with pytest.raises(psycopg.OperationalError, match="timed out"):
            on_guarded.result(timeout=30)
        assert time.monotonic() - started < 6, "failed, but not within the user timeout"
        # The link is really dead: without the guards the statement is still waiting.
        assert not on_bare.done()
    finally:
        link.thaw()
        guarded.close()
    # Back up, the statement sent into the frozen link gets its answer after all.
    assert on_bare.result(timeout=60) == (2,)
    bare.close()


@pytest.mark.django_db(transaction=True)
def test_a_listener_on_a_frozen_link_reconnects_once_it_is_back(
    link: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    assert link.network is not None
    heard: queue.Queue[listener.Notice] = queue.Queue()
    stop = threading.Event()

    def listen() -> None:
        # In the private network: its reconnections go through the proxy too.
        made = listener.Listener([listener.JOBS_CHANNEL])
        try:
            while not stop.is_set():
                for notice in made.notices(0.2):
                    heard.put(notice)
        finally:
            made.close()

    loop = link.network.submit(listen)
    try:
        assert heard.get(timeout=10) == listener.RECONNECTED
        with caplog.at_level(logging.WARNING, logger="djqueue.listener"):
            link.freeze()
            frozen_at = time.monotonic()
            # The connection is idle: only the keepalives can tell that it is dead.
            wait_until(
                lambda: "Lost the notification connection" in caplog.text,
                timeout=15,
                what="the listener to notice the frozen link",
            )
            assert time.monotonic() - frozen_at < 8
            link.thaw()
            assert heard.get(timeout=20) == listener.RECONNECTED

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify('djqueue', 'reports')")
        assert heard.get(timeout=10) == listener.NewJobs("reports")
    finally:
        stop.set()
        loop.result(timeout=30)
