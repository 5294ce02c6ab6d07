"""worker_ready and worker_shutdown reach receivers in the worker process."""

from __future__ import annotations

import signal

import pytest

from tests.acceptance.conftest import Workers


@pytest.mark.django_db(transaction=True)
def test_worker_signals_are_sent_at_start_and_at_warm_shutdown(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "1")
    worker.wait_for_log("signal worker_ready from w1.")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=15) == 0
    assert "signal worker_shutdown from w1." in worker.log()
