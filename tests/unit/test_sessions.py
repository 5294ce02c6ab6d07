"""The connection guards: which libpq parameters djqueue adds, and that it leaves alone
what the user set."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import override_settings

from djqueue.db import sessions

DEFAULT_GUARDS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
    "connect_timeout": 10,
}


@pytest.fixture(autouse=True)
def no_alias_stays_protected(monkeypatch: pytest.MonkeyPatch) -> None:
    """What protect_django_connections() adds here is forgotten after the test: the
    test process is no worker, and later tests' connections are left alone."""
    monkeypatch.setattr(sessions, "_protected", set())


def test_default_guards() -> None:
    assert sessions.link_options() == DEFAULT_GUARDS
    assert sessions.link_settings() == {
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "30000",
    }
    assert sessions.session_settings() == {
        "statement_timeout": "60000",
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "30000",
    }


@override_settings(
    DJQUEUE={
        "TCP_KEEPALIVE_IDLE_SECONDS": 1,
        "TCP_KEEPALIVE_INTERVAL_SECONDS": 0.4,
        "TCP_KEEPALIVE_COUNT": 2,
        "TCP_USER_TIMEOUT_SECONDS": 2.5,
        "STATEMENT_TIMEOUT_SECONDS": 0.25,
        "CONNECT_TIMEOUT_SECONDS": 0.5,
    }
)
def test_guards_follow_the_settings_in_the_units_libpq_takes() -> None:
    assert sessions.link_options() == {
        "keepalives": 1,
        "keepalives_idle": 1,
        # Whole seconds, and never 0 (which would mean the system's default).
        "keepalives_interval": 1,
        "keepalives_count": 2,
        "tcp_user_timeout": 2500,
        # Whole seconds, never below libpq's floor of 2.
        "connect_timeout": 2,
    }
    assert sessions.session_settings() == {
        "statement_timeout": "250",
        "tcp_keepalives_idle": "1",
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": "2",
        "tcp_user_timeout": "2500",
    }


@override_settings(
    DJQUEUE={
        "TCP_KEEPALIVE_IDLE_SECONDS": None,
        "TCP_KEEPALIVE_INTERVAL_SECONDS": None,
        "TCP_KEEPALIVE_COUNT": None,
        "TCP_USER_TIMEOUT_SECONDS": None,
        "STATEMENT_TIMEOUT_SECONDS": None,
        "CONNECT_TIMEOUT_SECONDS": None,
    }
)
def test_a_guard_set_to_none_is_left_out() -> None:
    assert sessions.link_options() == {}
    assert sessions.session_settings() == {}
    assert sessions.link_settings() == {}


def test_what_the_user_set_wins() -> None:
    given = {"keepalives_idle": 120, "sslmode": "require"}
    assert sessions.with_link_options(given) == {
        **DEFAULT_GUARDS,
        "keepalives_idle": 120,
        "sslmode": "require",
    }


def test_django_connections_of_the_process_get_the_guards_the_user_did_not_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = connections.settings["default"]
    monkeypatch.setitem(database, "OPTIONS", {"keepalives_count": 9})

    sessions.protect_django_connections()

    assert database["OPTIONS"] == {**DEFAULT_GUARDS, "keepalives_count": 9}
    # What Django hands to psycopg when it connects, in any thread.
    params = connections["default"].get_connection_params()
    assert params["tcp_user_timeout"] == 30_000
    assert params["keepalives_count"] == 9


@pytest.fixture
def options_seen_at_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Stand-ins for the worker and the scheduler that record the alias's OPTIONS as
    they were when they started to run."""
    from djqueue.beat import scheduler as beat
    from djqueue.db import schema
    from djqueue.management import logs
    from djqueue.management.commands import runbeat
    from djqueue.runtime import worker

    database = connections.settings["default"]
    monkeypatch.setitem(database, "OPTIONS", {"keepalives_idle": 99})
    seen: dict[str, object] = {}

    class FakeWorker:
        name = "fake"

        def __init__(self, options: object) -> None:
            pass

        def run(self) -> int:
            seen["runworker"] = dict(database["OPTIONS"])
            return 0

    class FakeBeat:
        def __init__(self, *args: object) -> None:
            pass

        def run(self) -> None:
            seen["runbeat"] = dict(database["OPTIONS"])

    monkeypatch.setattr(worker, "Worker", FakeWorker)
    monkeypatch.setattr(beat, "Beat", FakeBeat)
    monkeypatch.setattr(runbeat, "_stop_on_signals", lambda stop: None)
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)
    # No database here: the migrations check is tested with one (test_missing_migrations).
    monkeypatch.setattr(schema, "require", lambda *args: None)
    return seen


@pytest.mark.parametrize("command", ["runworker", "runbeat"])
def test_worker_and_beat_processes_guard_their_django_connections(
    command: str, options_seen_at_run: dict[str, object]
) -> None:
    from django.core.management import call_command

    call_command(command)

    assert options_seen_at_run[command] == {**DEFAULT_GUARDS, "keepalives_idle": 99}


def test_the_scheduler_runs_in_one_of_djqueues_own_threads() -> None:
    import threading

    from djqueue.beat import scheduler as beat

    seen: list[bool] = []
    stopped = threading.Event()
    stopped.set()  # run() returns at once, as when a stop came before it started

    def run_beat() -> None:
        beat.Beat("test-beat", stop=stopped).run()
        seen.append(sessions.is_own_thread())

    thread = threading.Thread(target=run_beat)
    thread.start()
    thread.join(10)
    assert seen == [True]
    assert not sessions.is_own_thread()


def test_no_session_settings_on_a_connection_of_djangos_pool() -> None:
    # A pooled connection goes from thread to thread, into task code's threads too.
    class PooledConnection:
        vendor = "postgresql"
        settings_dict = {"OPTIONS": {"pool": True}}

        def cursor(self) -> None:
            raise AssertionError("a session setting was made on a pooled connection")

    sessions._guard_django(PooledConnection())  # type: ignore[arg-type]
