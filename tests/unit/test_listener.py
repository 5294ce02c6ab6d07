"""Notifications are validated before anyone acts on them, malformed ones are logged
without flooding the log, and a supervised loop survives whatever it raises."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator

import pytest

from djqueue.db import listener, sessions

JOB = uuid.UUID("01942a6e-5b1c-7000-8d3a-1748f457c0ef")
OTHER = uuid.UUID("01942a6e-5b1c-7000-8d3a-1748f457c0f0")


@pytest.fixture(autouse=True)
def fresh_rejections(monkeypatch: pytest.MonkeyPatch) -> listener.Rejections:
    """A rejection log of its own, not quieted by another test's report."""
    made = listener.Rejections()
    monkeypatch.setattr(listener, "rejected", made)
    return made


def test_well_formed_payloads_become_typed_notices() -> None:
    assert listener.parse("djqueue", "reports") == listener.NewJobs("reports")
    assert listener.parse("djqueue_pause", "reports") == listener.PauseChanged("reports")
    assert listener.parse("djqueue_revoke", str(JOB)) == listener.RevokeRequested(JOB)
    assert listener.parse("djqueue_done", f"{JOB} {OTHER}") == listener.Finished(
        frozenset({JOB, OTHER})
    )
    # Too many ids to name: everyone reads again.
    assert listener.parse("djqueue_done", "") == listener.Finished(None)
    assert listener.parse("djqueue_started", str(JOB)) == listener.Started(frozenset({JOB}))
    assert listener.parse("djqueue_started", "") == listener.Started(None)


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        ("djqueue_revoke", "garbage"),
        ("djqueue_revoke", ""),
        ("djqueue_revoke", f"{JOB} {OTHER}"),
        ("djqueue_revoke", JOB.hex),
        ("djqueue_done", f"{JOB} garbage"),
        ("djqueue_done", f"{JOB}  {OTHER}"),
        ("djqueue_started", f"{JOB} garbage"),
        ("djqueue", ""),
        ("djqueue", "q" * 101),
        ("djqueue_pause", "q" * 101),
        ("somewhere_else", "reports"),
    ],
)
def test_malformed_payloads_are_dropped_and_logged(
    channel: str, payload: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="djqueue.listener"):
        assert listener.parse(channel, payload) is None
    assert [r.getMessage()[:36] for r in caplog.records] == ["Ignored a malformed notification on "]


def test_queue_names_may_be_as_long_as_the_column() -> None:
    assert listener.parse("djqueue", "q" * 100) == listener.NewJobs("q" * 100)


def test_a_malformed_payload_is_logged_escaped_and_shortened(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = "\x1b]0;owned\x07\x1b[2J" + "x" * 10_000
    with caplog.at_level(logging.WARNING, logger="djqueue.listener"):
        listener.parse("djqueue_revoke", payload)
    (message,) = [r.getMessage() for r in caplog.records]
    assert "\x1b" not in message and "\x07" not in message
    assert "\\x1b]0;owned\\x07\\x1b[2J" in message
    assert len(message) < 400


def test_a_flood_of_malformed_payloads_logs_one_line(
    fresh_rejections: listener.Rejections, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="djqueue.listener"):
        for n in range(1000):
            listener.parse("djqueue_revoke", f"garbage {n}")
    assert len(caplog.records) == 1
    assert fresh_rejections.count == 1000


def test_the_next_report_says_how_many_were_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rejections = listener.Rejections(every=3600)
    with caplog.at_level(logging.WARNING, logger="djqueue.listener"):
        for _ in range(5):
            rejections.report("djqueue_revoke", "garbage")
        rejections.every = 0.0
        rejections._quiet_until = 0.0  # the hour has passed
        rejections.report("djqueue_revoke", "garbage")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "(4 more since the last report, not logged)" in messages[1]


# run_forever -----------------------------------------------------------------------


@pytest.fixture
def quick_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listener, "restart_delay", lambda failures: 0.01)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


class FlakyLoop:
    """Raises on its first ``failures`` runs, then runs until stopped."""

    def __init__(self, stop: threading.Event, failures: int) -> None:
        self.stop = stop
        self.failures = failures
        self.runs = 0
        self.serving = threading.Event()
        self.own_thread = False

    def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise ValueError(f"bad input number {self.runs}")
        self.own_thread = sessions.is_own_thread()
        self.serving.set()
        self.stop.wait()


@pytest.mark.usefixtures("quick_restarts")
def test_a_loop_that_raises_is_started_again_and_logged(
    stop: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    loop = FlakyLoop(stop, failures=3)
    with caplog.at_level(logging.ERROR, logger="djqueue.listener"):
        thread = listener.run_forever(loop, "test-loop", stop)
        assert loop.serving.wait(10), "the loop was not started again"
    assert loop.runs == 4
    assert thread.name == "test-loop" and thread.daemon
    failures = [r for r in caplog.records if "test-loop loop failed" in r.getMessage()]
    assert len(failures) == 3
    assert failures[0].exc_info is not None
    assert "bad input number 1" in caplog.text


@pytest.mark.usefixtures("quick_restarts")
def test_a_loop_that_returns_early_is_started_again(stop: threading.Event) -> None:
    calls: list[int] = []
    again = threading.Event()

    def returns_at_once() -> None:
        calls.append(1)
        if len(calls) == 3:
            again.set()
            stop.wait()

    listener.run_forever(returns_at_once, "test-loop", stop)
    assert again.wait(10)


def test_the_thread_ends_when_stopped(stop: threading.Event) -> None:
    loop = FlakyLoop(stop, failures=0)
    thread = listener.run_forever(loop, "test-loop", stop)
    assert loop.serving.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert loop.runs == 1


def test_the_loop_runs_in_one_of_djqueues_own_threads(stop: threading.Event) -> None:
    loop = FlakyLoop(stop, failures=0)
    listener.run_forever(loop, "test-loop", stop)
    assert loop.serving.wait(10)
    assert loop.own_thread
    assert not sessions.is_own_thread()


def test_restart_delays_grow_and_are_capped() -> None:
    delays = [listener.restart_delay(n) for n in range(1, 10)]
    assert delays[0] == 0.5
    assert delays == sorted(delays)
    assert delays[-1] == 30.0
