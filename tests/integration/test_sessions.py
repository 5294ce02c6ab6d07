"""The statement timeout (and the server's keepalives) are on the connections of
djqueue's own threads, and only there; the server's keepalives alone on every other
connection of a worker or scheduler process; the listener's connections carry every
guard."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.db import OperationalError, connection, connections
from django.test import override_settings

from djqueue.db import listener, sessions

pytestmark = pytest.mark.django_db

T = TypeVar("T")


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a new thread (which holds its own Django connections), closed after."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the thread is still running"
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def show_timeout() -> str:
    return show("statement_timeout")


def show(setting: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [setting])
        return str(cursor.fetchone()[0])


def own_then_show() -> str:
    sessions.own_thread()
    return show_timeout()


@override_settings(DJQUEUE={"STATEMENT_TIMEOUT_SECONDS": 1.5})
def test_own_threads_connections_have_the_statement_timeout_others_not() -> None:
    assert in_thread(own_then_show) == "1500ms"
    assert in_thread(show_timeout) == "0"


@override_settings(DJQUEUE={"STATEMENT_TIMEOUT_SECONDS": 1.5})
def test_a_connection_open_before_the_thread_is_marked_gets_it_too() -> None:
    def open_then_mark() -> tuple[str, str]:
        before = show_timeout()
        return before, own_then_show()

    assert in_thread(open_then_mark) == ("0", "1500ms")


@override_settings(DJQUEUE={"STATEMENT_TIMEOUT_SECONDS": None})
def test_no_statement_timeout_when_the_setting_is_none() -> None:
    assert in_thread(own_then_show) == "0"


@override_settings(
    DJQUEUE={"STATEMENT_TIMEOUT_SECONDS": 1.5, "LISTEN_DSN": "host=127.0.0.1 dbname=postgres"}
)
def test_no_session_settings_on_django_connections_behind_a_pooler() -> None:
    # LISTEN_DSN says DATABASES goes through a transaction-mode pooler, whose server
    # connections would carry the setting on to other clients.
    assert in_thread(own_then_show) == "0"


@override_settings(DJQUEUE={"TCP_KEEPALIVE_IDLE_SECONDS": 4, "TCP_USER_TIMEOUT_SECONDS": 9})
def test_the_server_probes_an_own_threads_link_as_the_client_does() -> None:
    def own_then_show_keepalives() -> tuple[str, str]:
        sessions.own_thread()
        return show("tcp_keepalives_idle"), show("tcp_user_timeout")

    assert in_thread(own_then_show_keepalives) == ("4", "9000")


@pytest.fixture
def protected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test database protected as runworker and runbeat protect theirs (undone)."""
    database = connections.settings["default"]
    monkeypatch.setitem(database, "OPTIONS", dict(database.get("OPTIONS") or {}))
    monkeypatch.setattr(sessions, "_protected", set())
    sessions.protect_django_connections()


def show_link_guards() -> tuple[str, str, str]:
    return show("tcp_keepalives_idle"), show("tcp_user_timeout"), show_timeout()


@override_settings(
    DJQUEUE={
        "TCP_KEEPALIVE_IDLE_SECONDS": 4,
        "TCP_USER_TIMEOUT_SECONDS": 9,
        "STATEMENT_TIMEOUT_SECONDS": 1.5,
    }
)
def test_in_a_worker_process_task_connections_get_the_servers_link_guards_only(
    protected: None,
) -> None:
    # The server ends the session of a task whose host vanished (freeing the locks of
    # a transaction it left open); its statements may still run as long as they need.
    assert in_thread(show_link_guards) == ("4", "9000", "0")
    assert in_thread(lambda: (sessions.own_thread(), show_link_guards())[1]) == (
        "4",
        "9000",
        "1500ms",
    )


@override_settings(DJQUEUE={"TCP_KEEPALIVE_IDLE_SECONDS": 4})
def test_outside_worker_processes_task_connections_are_left_alone() -> None:
    # A web process, say: its connections are the application's business (the
    # server shows the system's keepalive time, not the setting).
    assert in_thread(lambda: show("tcp_keepalives_idle")) != "4"


@override_settings(
    DJQUEUE={"TCP_KEEPALIVE_IDLE_SECONDS": 4, "LISTEN_DSN": "host=127.0.0.1 dbname=postgres"}
)
def test_no_link_guards_on_task_connections_behind_a_pooler(protected: None) -> None:
    assert in_thread(lambda: show("tcp_keepalives_idle")) != "4"


@override_settings(DJQUEUE={"STATEMENT_TIMEOUT_SECONDS": 0.2})
def test_a_long_statement_is_cancelled_in_an_own_thread_only() -> None:
    def sleep() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.5)")

    def own_sleep() -> None:
        sessions.own_thread()
        sleep()

    with pytest.raises(OperationalError, match="statement timeout"):
        in_thread(own_sleep)
    in_thread(sleep)  # task code's reports may run long


@override_settings(
    DJQUEUE={
        "TCP_KEEPALIVE_IDLE_SECONDS": 7,
        "TCP_USER_TIMEOUT_SECONDS": 12.0,
        "STATEMENT_TIMEOUT_SECONDS": 20.0,
    }
)
def test_listener_connections_carry_every_guard() -> None:
    conn = listener.connect()
    try:
        params = conn.info.get_parameters()
        assert params["keepalives"] == "1"
        assert params["keepalives_idle"] == "7"
        assert params["tcp_user_timeout"] == "12000"
        assert conn.execute("SHOW statement_timeout").fetchone() == ("20s",)
        assert conn.execute("SHOW tcp_keepalives_idle").fetchone() == ("7",)
    finally:
        conn.close()


def test_a_listen_dsn_keeps_the_guards_it_sets_itself() -> None:
    db = connection.settings_dict
    dsn = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"
    with override_settings(DJQUEUE={"LISTEN_DSN": f"{dsn} keepalives_idle=42"}):
        conn = listener.connect(autocommit=False)
    try:
        params = conn.info.get_parameters()
        assert params["keepalives_idle"] == "42"
        assert params["keepalives_count"] == "3"
        # Set for the session, not only for a transaction that is rolled back.
        conn.rollback()
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1min",)
    finally:
        conn.close()
