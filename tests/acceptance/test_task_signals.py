"""Task and worker signals reach receivers in the process where Celery sends them: the
worker, or the prefork child that runs the task. A receiver that raises changes
nothing."""

from __future__ import annotations

import datetime
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from djqueue.core import ids
from djqueue.core.records import NewJob
from djqueue.db import broker
from djqueue.db.models import Job
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def _ended(job_id: object) -> Job:
    return wait_until(  # type: ignore[no-any-return]
        lambda: Job.objects.filter(id=job_id, state__in=["SUCCESS", "FAILURE", "REVOKED"]).first(),
        timeout=20,
        what=f"job {job_id} to end",
    )


def _heard(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _of(heard: list[dict[str, Any]], job_id: object) -> list[dict[str, Any]]:
    """The signals about one job, in the order they were sent."""
    wanted = str(job_id)

    def about(line: dict[str, Any]) -> bool:
        request = line.get("request")
        return wanted in (
            line.get("task_id"),
            line.get("id"),
            request.get("request") if isinstance(request, dict) else None,
        )

    return [line for line in heard if about(line)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_task_and_worker_signals_in_a_real_worker(
    workers: Workers, tmp_path: Path, pool: str
) -> None:
    log = tmp_path / "signals.jsonl"
    expired = tasks.add.apply_async((1, 1), expires=timezone.now() + datetime.timedelta(0, 0.2))
    wait_until(lambda: timezone.now() > Job.objects.get(pk=expired.id).expires_at, 5, "expiry")
    unknown = NewJob(ids.new_id(), "nowhere.defined", "default", 0, "[]", "{}", None)
    broker.enqueue([unknown])
    env = {"DJQUEUE_TEST_SIGNAL_LOG": str(log), "DJQUEUE_TEST_SIGNAL_RAISE": "1"}
    worker = workers.start("-P", pool, "-c", "1", env=env)
    ok = tasks.add.delay(1, 1)
    failed = tasks.fail.delay("bad")
    retried = tasks.retry_then_succeed.delay(1)

    assert _ended(ok.id).state == "SUCCESS"
    assert _ended(failed.id).state == "FAILURE"
    assert _ended(retried.id).state == "SUCCESS"
    assert _ended(expired.id).state == "REVOKED"
    assert _ended(unknown.id).state == "FAILURE"
    worker.send(signal.SIGTERM)
    assert worker.wait_exit(timeout=20) == 0

    heard = _heard(log)
    # Every id a receiver got is a str, as Celery's (a uuid.UUID is logged as "uuid:...").
    assert not [line for line in heard if "uuid:" in json.dumps(line)]
    lifecycle = [line["signal"] for line in heard if line["pid"] == worker.pid]
    for name in ("celeryd_init", "worker_init", "worker_ready", "worker_shutdown"):
        assert name in lifecycle
    assert lifecycle.index("celeryd_init") < lifecycle.index("worker_init")
    assert lifecycle.index("worker_init") < lifecycle.index("worker_ready")
    init = next(line for line in heard if line["signal"] == "celeryd_init")
    assert init["sender"] == worker.hostname and init["options"]["pool"] == pool

    # One slot: the signals of one run are not interleaved with another run's (the
    # worker may receive the next job meanwhile: its task_received is set aside).
    # task_success names no job (as in Celery): it is the one between the job's prerun
    # and postrun.
    prerun = next(line for line in _of(heard, ok.id) if line["signal"] == "task_prerun")
    running = [line for line in heard if line["signal"] != "task_received"]
    start = running.index(prerun)
    sent = running[start : start + 3]
    assert [line["signal"] for line in sent] == ["task_prerun", "task_success", "task_postrun"]
    assert sent[0]["sender"] == "task:tests.testapp.tasks.add" and sent[0]["args"] == [1, 1]
    assert sent[1]["result"] == 2
    assert (sent[2]["state"], sent[2]["retval"]) == ("SUCCESS", 2)
    if pool == "prefork":
        assert {line["pid"] for line in sent} != {worker.pid}  # sent in the child

    failure = next(line for line in _of(heard, failed.id) if line["signal"] == "task_failure")
    assert failure["exception"] == "exception:ValueError"
    assert failure["einfo"] == "einfo:ValueError" and failure["traceback"] == "traceback"
    assert failure["args"] == ["bad"]

    retry = next(line for line in _of(heard, retried.id) if line["signal"] == "task_retry")
    assert retry["reason"] == "exception:Retry" and retry["einfo"] == "einfo:ConnectionError"
    assert retry["request"]["hostname"].startswith(worker.hostname)

    # Each job was received first (task_received), then:
    received_first = _of(heard, expired.id)[0], _of(heard, unknown.id)[0]
    assert [line["signal"] for line in received_first] == ["task_received"] * 2
    [revoked] = _of(heard, expired.id)[1:]
    assert (revoked["signal"], revoked["expired"], revoked["terminated"]) == (
        "task_revoked",
        True,
        False,
    )
    [unknown_sent] = _of(heard, unknown.id)[1:]
    assert (unknown_sent["signal"], unknown_sent["name"]) == ("task_unknown", "nowhere.defined")

    # task_received: in the worker, with the job's request, before the job runs.
    received = next(line for line in _of(heard, ok.id) if line["signal"] == "task_received")
    assert received["pid"] == worker.pid and received["sender"] == "object:Worker"
    assert received["request"]["task"] == tasks.add.name
    assert heard.index(received) < heard.index(prerun)
    # worker_process_init: in each prefork child before its first job; threads send none.
    inits = [line for line in heard if line["signal"] == "worker_process_init"]
    if pool == "prefork":
        assert inits and all(line["pid"] != worker.pid for line in inits)
        assert inits[0]["sender"] is None
    else:
        assert inits == []
    # worker_shutting_down: in the worker, as the warm shutdown begins.
    [down] = [line for line in heard if line["signal"] == "worker_shutting_down"]
    assert (down["pid"], down["sender"]) == (worker.pid, worker.hostname)
    assert (down["sig"], down["how"], down["exitcode"]) == ("SIGTERM", "Warm", 0)
    assert lifecycle.index("worker_shutting_down") < lifecycle.index("worker_shutdown")

    # Every signal also reached a receiver that raised: logged, and nothing else.
    assert "a receiver that fails" in worker.log()
