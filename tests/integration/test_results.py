import threading
import time
import uuid
from typing import Any

import pytest
from django.db import connections

import djqueue
from djqueue.core import exceptions, executor, states
from djqueue.db import broker
from djqueue.db.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def run_all() -> None:
    jobs = broker.claim(["default"], 100, "w", 30.0, limited=True)
    broker.finish([executor.execute(job) for job in jobs])


def test_successful_result() -> None:
    result = tasks.add.delay(20, 22)
    assert not result.ready()
    run_all()
    assert (result.state, result.status, result.result, result.info) == (
        states.SUCCESS,
        states.SUCCESS,
        42,
        42,
    )
    assert result.ready() and result.successful() and not result.failed()
    assert result.get() == 42
    assert result.name == "tests.testapp.tasks.add"
    assert result.job.finished_at is not None


def test_failed_result_reraises_the_same_error_type() -> None:
    result = tasks.fail.delay("broken input")
    run_all()
    assert result.failed()
    assert isinstance(result.result, ValueError)
    assert "broken input" in result.traceback
    with pytest.raises(ValueError, match="broken input"):
        result.get()
    error = result.get(propagate=False)
    assert isinstance(error, ValueError)


def test_unknown_error_type_becomes_task_error_with_type_and_message() -> None:
    result = tasks.fail_custom.delay()
    run_all()
    with pytest.raises(exceptions.TaskError) as caught:
        result.get()
    assert caught.value.error_type == "tests.testapp.tasks.CustomError"
    assert caught.value.message == "not rebuildable"


def test_revoked_job_raises_revoked_error() -> None:
    result = tasks.add.delay(1, 2)
    djqueue.revoke(str(result.id))
    with pytest.raises(exceptions.TaskRevokedError):
        result.get(timeout=1)


def test_get_on_unknown_id_raises_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(exceptions.JobNotFound, match="no job has id"):
        djqueue.AsyncResult(uuid.uuid4()).get()
    assert time.monotonic() - started < 1


def test_get_times_out_with_a_clear_error() -> None:
    result = tasks.add.delay(1, 2)
    with pytest.raises(exceptions.TimeoutError, match="still PENDING"):
        result.get(timeout=0.3)


def test_results_compare_by_id() -> None:
    job_id = uuid.uuid4()
    assert djqueue.AsyncResult(job_id) == djqueue.AsyncResult(str(job_id))
    assert len({djqueue.AsyncResult(job_id), djqueue.AsyncResult(str(job_id))}) == 1


@pytest.mark.django_db(transaction=True)
def test_get_wakes_on_notify_not_on_polling() -> None:
    result = tasks.add.delay(1, 2)
    finished_at: list[float] = []

    def finish_soon() -> None:
        try:
            time.sleep(0.5)
            run_all()
            finished_at.append(time.monotonic())
        finally:
            connections.close_all()

    thread = threading.Thread(target=finish_soon)
    thread.start()
    # With a 30 s polling interval only the notification can wake get() in time.
    assert result.get(timeout=10, interval=30) == 3
    woke = time.monotonic()
    thread.join()
    assert woke - finished_at[0] < 0.5


@pytest.mark.django_db(transaction=True)
def test_forget_removes_the_row() -> None:
    result = tasks.add.delay(1, 2)
    run_all()
    result.forget()
    assert not Job.objects.filter(pk=result.id).exists()
    with pytest.raises(exceptions.JobNotFound):
        result.state  # noqa: B018


def test_retry_state_exposes_the_error() -> None:
    result = tasks.retry_then_succeed.delay(3)
    run_all()
    assert result.state == states.RETRY
    assert isinstance(result.info, ConnectionError)
    assert not result.ready()


def test_ignore_result_reads_as_none() -> None:
    result = tasks.forgetful.delay()
    run_all()
    assert result.successful()
    assert result.get() is None


def test_task_result_types_round_trip_through_the_database(settings: Any) -> None:
    import datetime
    import decimal

    values = [
        datetime.datetime(2026, 5, 4, 3, 2, 1, tzinfo=datetime.UTC),
        datetime.date(2026, 5, 4),
        datetime.time(3, 2, 1),
        decimal.Decimal("19.99"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ]
    result = tasks.typed_roundtrip.delay(*values)
    run_all()
    assert result.get() == values


@pytest.mark.django_db(transaction=True)
def test_aget_waits_without_blocking_the_event_loop() -> None:
    import asyncio

    result = tasks.add.delay(20, 1)

    async def main() -> tuple[Any, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beating = asyncio.create_task(ticker())
        finisher = asyncio.get_running_loop().run_in_executor(None, _finish_later)
        value = await result.aget(timeout=10, interval=30)
        await finisher
        beating.cancel()
        return value, ticks

    value, ticks = asyncio.run(main())
    assert value == 21
    assert ticks >= 10  # the loop kept running while aget() waited


def _finish_later() -> None:
    try:
        time.sleep(0.3)
        run_all()
    finally:
        connections.close_all()
