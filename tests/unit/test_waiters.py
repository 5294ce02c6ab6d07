"""Waiters and the hub that wakes them, without a database."""

from __future__ import annotations

import threading
import uuid

import pytest

from djqueue.db import listener, waiters


def test_a_wake_during_the_read_is_kept_for_the_next_wait() -> None:
    waiter = waiters.Waiter([uuid.uuid4()])
    waiter.wake()
    assert waiter.wait(10) is True  # returns at once
    # Woken while the caller reads its row: the next wait returns at once too.
    waiter.wake()
    assert waiter.wait(10) is True
    assert waiter.wait(0.01) is False


def test_a_wait_starts_a_new_listener_thread_when_the_last_one_died(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    started: list[str] = []

    def run_forever(target: object, name: str, stop: threading.Event) -> threading.Thread:
        started.append(name)
        return dead

    monkeypatch.setattr(listener, "run_forever", run_forever)
    hub = waiters.Hub()
    first, second = waiters.Waiter([uuid.uuid4()]), waiters.Waiter([uuid.uuid4()])
    hub.add(first)
    hub.add(second)
    assert started == [waiters.THREAD_NAME, waiters.THREAD_NAME]
