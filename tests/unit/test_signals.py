"""Task signals sent by the executor: Celery's names, keyword arguments and order."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

import djqueue
from djqueue.core import endings, executor, ids, job_request, reporting, signals
from djqueue.core.exceptions import ExceptionInfo, NotRegistered, Retry
from djqueue.core.records import ClaimedJob
from tests.testapp import tasks

NAMES = [
    "task_prerun",
    "task_postrun",
    "task_success",
    "task_failure",
    "task_retry",
    "task_revoked",
    "task_unknown",
    "task_rejected",
]


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for name in NAMES:

        def receiver(sender: Any, heard_as: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal")
            seen.append((heard_as, {"sender": sender, **kwargs}))

        getattr(signals, name).connect(receiver, weak=False)
        receivers.append((name, receiver))
    yield seen
    for name, receiver in receivers:
        getattr(signals, name).disconnect(receiver)


def _job(task_name: str, args: str = "[]", **fields: Any) -> ClaimedJob:
    defaults: dict[str, Any] = {
        "kwargs": "{}",
        "attempt": 1,
        "retries": 0,
        "queue": "default",
        "priority": 0,
        "eta": None,
        "expired": False,
        "worker": "w1",
    }
    defaults.update(fields)
    return ClaimedJob(ids.new_id(), task_name, args, **defaults)


def test_signals_are_importable_from_the_documented_module() -> None:
    assert djqueue.signals.task_postrun is signals.task_postrun
    for name in signals.NAMES:
        assert getattr(djqueue.signals, name) is getattr(signals, name)


def test_success_sends_prerun_success_then_postrun(heard: list[Any]) -> None:
    job = _job(tasks.add.name, "[2, 3]")
    executor.execute(job)
    assert [name for name, _ in heard] == ["task_prerun", "task_success", "task_postrun"]
    prerun, success, postrun = (kwargs for _, kwargs in heard)
    assert prerun["sender"] is tasks.add and prerun["task"] is tasks.add
    # Ids are strings, as Celery's.
    assert prerun["task_id"] == str(job.id) and prerun["args"] == [2, 3] and prerun["kwargs"] == {}
    assert prerun["request"].id == str(job.id) and prerun["request"].root_id == str(job.id)
    assert success == {"sender": tasks.add, "result": 5, "task_id": str(job.id)}
    assert postrun["retval"] == 5 and postrun["state"] == "SUCCESS"
    assert postrun["task"] is tasks.add and postrun["task_id"] == str(job.id)
    assert postrun["request"].id == str(job.id)


def test_failure_sends_the_exception_its_traceback_and_einfo(heard: list[Any]) -> None:
    job = _job(tasks.fail.name, '["bad"]')
    executor.execute(job)
    assert [name for name, _ in heard] == ["task_prerun", "task_failure", "task_postrun"]
    failure = heard[1][1]
    assert failure["task_id"] == str(job.id)
    assert isinstance(failure["exception"], ValueError)
    assert failure["args"] == ("bad",) and failure["kwargs"] == {}
    assert failure["traceback"] is failure["exception"].__traceback__
    info = failure["einfo"]
    assert isinstance(info, ExceptionInfo) and info.tb is failure["traceback"]
    assert info.exception is failure["exception"] and info.type is ValueError
    assert "ValueError: bad" in info.traceback and str(info) == info.traceback
    assert heard[2][1]["state"] == "FAILURE"
    assert heard[2][1]["retval"] is failure["exception"]


def test_retry_sends_the_request_the_retry_and_einfo(heard: list[Any]) -> None:
    job = _job(tasks.retry_then_succeed.name, "[1]")
    executor.execute(job)
    assert [name for name, _ in heard] == ["task_prerun", "task_retry", "task_postrun"]
    retry = heard[1][1]
    assert retry["request"].id == str(job.id) and retry["request"].retries == 0
    assert isinstance(retry["reason"], Retry)
    assert isinstance(retry["reason"].exc, ConnectionError)
    assert retry["einfo"].type is ConnectionError
    assert retry["countdown"] == 0
    assert heard[2][1]["state"] == "RETRY"


def test_expired_and_revoked_jobs_send_task_revoked_only(heard: list[Any]) -> None:
    expired = _job(tasks.add.name, "[1, 2]", expired=True)
    revoked = _job(tasks.add.name, "[1, 2]", revoked=True)
    executor.execute(expired)
    executor.execute(revoked)
    assert [name for name, _ in heard] == ["task_revoked", "task_revoked"]
    first, second = (kwargs for _, kwargs in heard)
    assert first["sender"] is tasks.add and first["request"].id == str(expired.id)
    assert (first["expired"], first["terminated"], first["signum"]) == (True, False, None)
    assert second["request"].args == (1, 2)
    assert (second["expired"], second["terminated"]) == (False, False)


def test_a_job_stopped_from_outside_sends_task_revoked_terminated(heard: list[Any]) -> None:
    job = _job(tasks.add.name, "[1, 2]")
    outcome = endings.revoked(job, "revoked while running (terminated)")
    reporting.announce_stopped(job, outcome, int(signal.SIGKILL))
    [(name, kwargs)] = heard
    assert name == "task_revoked"
    assert (kwargs["terminated"], kwargs["signum"], kwargs["expired"]) == (
        True,
        signal.SIGKILL,
        False,
    )


def test_an_unknown_task_sends_task_unknown(heard: list[Any]) -> None:
    job = _job("tests.testapp.tasks.nope")
    executor.execute(job)
    [(name, kwargs)] = heard
    assert name == "task_unknown" and kwargs["sender"] is None
    assert kwargs["name"] == "tests.testapp.tasks.nope" and kwargs["id"] == str(job.id)
    assert isinstance(kwargs["exc"], NotRegistered) and kwargs["message"].job is job
    # Read as Celery's broker message, and as the job.
    message = kwargs["message"]
    assert message.headers["id"] == str(job.id) and message.headers["task"] == job.task_name
    assert message.delivery_info["routing_key"] == job.queue and message.id == job.id
    assert message.payload[:2] == [[], {}] and message.content_type == "application/json"


def test_arguments_that_cannot_be_decoded_send_task_rejected(heard: list[Any]) -> None:
    job = _job(tasks.add.name, "not json")
    outcome = executor.execute(job)
    assert outcome.state == "FAILURE"
    [(name, kwargs)] = heard
    assert name == "task_rejected" and kwargs["message"].job is job
    with pytest.raises(ValueError):
        kwargs["message"].payload  # noqa: B018 - Celery's decode raises too
    assert isinstance(kwargs["exc"], ValueError)


def test_a_failing_receiver_does_not_change_the_outcome(caplog: Any) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    for name in NAMES:
        getattr(signals, name).connect(broken, weak=False)
    try:
        result = tasks.add.apply([1, 1])
        failed = executor.execute(_job(tasks.fail.name, '["x"]'))
    finally:
        for name in NAMES:
            getattr(signals, name).disconnect(broken)
    assert result.get() == 2
    assert failed.state == "FAILURE" and failed.error_message == "x"
    assert "receiver bug" in caplog.text


def test_the_request_of_a_job_whose_task_is_not_registered_here() -> None:
    # Signals about such a job (task_received, task_revoked) still get its request.
    job = _job("tests.testapp.tasks.nope", "[1]", expired=True)
    request = job_request.of(job)
    assert (request.id, request.task, request.args) == (str(job.id), job.task_name, (1,))
    assert request.ignore_result is False
