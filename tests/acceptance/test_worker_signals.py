"""worker_ready, worker_shutting_down, worker_shutdown and worker_process_init reach
receivers in the process where Celery sends them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from djqueue import control
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_worker_signals_are_sent_at_start_and_at_warm_shutdown(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "1")
    worker.wait_for_log("signal worker_ready from w1.")
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=15) == 0
    assert "signal worker_shutdown from w1." in worker.log()


def _heard(path: Path, name: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if line["signal"] == name]


@pytest.mark.django_db(transaction=True)
def test_solo_sends_worker_process_init_in_the_worker_and_a_cold_shutdown_says_so(
    workers: Workers, tmp_path: Path
) -> None:
    log = tmp_path / "signals.jsonl"
    worker = workers.start("-P", "solo", env={"DJQUEUE_TEST_SIGNAL_LOG": str(log)})
    assert tasks.add.delay(1, 2).get(timeout=15) == 3
    [init] = _heard(log, "worker_process_init")
    assert (init["pid"], init["sender"]) == (worker.pid, None)  # solo: the worker itself

    running = tasks.sleep.delay(30)
    wait_until(
        lambda: Job.objects.filter(id=running.id, state="STARTED").exists(), 15, "the job to start"
    )
    worker.send(signal.SIGTERM)
    worker.wait_for_log("Warm shutdown")
    worker.send(signal.SIGQUIT)
    assert worker.wait_exit(timeout=15) == 1
    warm, cold = _heard(log, "worker_shutting_down")
    assert (warm["sig"], warm["how"], warm["exitcode"]) == ("SIGTERM", "Warm", 0)
    assert (cold["sig"], cold["how"], cold["exitcode"]) == ("SIGQUIT", "Cold", 1)
    assert cold["sender"] == worker.hostname


@pytest.mark.django_db(transaction=True)
def test_a_shutdown_command_is_a_warm_shutdown_without_a_signal(
    workers: Workers, tmp_path: Path
) -> None:
    log = tmp_path / "signals.jsonl"
    worker = workers.start("-P", "threads", env={"DJQUEUE_TEST_SIGNAL_LOG": str(log)})
    control.shutdown(destination=[worker.hostname])
    assert worker.wait_exit(timeout=15) == 0
    [down] = _heard(log, "worker_shutting_down")
    assert (down["sig"], down["how"], down["exitcode"]) == (None, "Warm", 0)
