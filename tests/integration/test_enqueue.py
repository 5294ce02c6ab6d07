import datetime
import re
import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

import djqueue
from djqueue.core import states
from djqueue.core.exceptions import NotRegistered, PayloadTooLarge
from djqueue.db.models import Job
from djqueue.integrations import testing
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_delay_inserts_a_pending_job_with_its_arguments() -> None:
    result = tasks.add.delay(2, 3)
    job = Job.objects.get(pk=result.id)
    assert (job.task_name, job.state, job.args, job.kwargs) == (
        "tests.testapp.tasks.add",
        states.PENDING,
        [2, 3],
        {},
    )
    assert (job.queue, job.priority, job.attempt, job.retries) == ("default", 0, 0, 0)
    assert job.eta <= timezone.now()
    assert result.state == states.PENDING


def test_apply_async_options_are_stored() -> None:
    task_id = uuid.uuid4()
    before = timezone.now()
    result = tasks.add.apply_async(
        (1,), {"y": 2}, countdown=60, expires=120, queue="slow", priority=9, task_id=task_id
    )
    job = Job.objects.get(pk=task_id)
    assert result.id == str(task_id)  # ids are strings, as Celery's
    assert (job.queue, job.priority, job.kwargs) == ("slow", 9, {"y": 2})
    assert job.eta >= before + datetime.timedelta(seconds=59)
    assert job.expires_at is not None
    assert job.expires_at - job.enqueued_at == datetime.timedelta(seconds=120)


def test_eta_is_stored_as_given() -> None:
    moment = datetime.datetime(2031, 5, 1, 9, 30, tzinfo=datetime.UTC)
    result = tasks.add.apply_async((1, 2), eta=moment)
    assert Job.objects.get(pk=result.id).eta == moment


def test_bad_arguments_insert_nothing() -> None:
    with pytest.raises(TypeError, match="argument 'y'"):
        tasks.add.delay(1, y=object())
    with pytest.raises(PayloadTooLarge):
        tasks.echo.delay("x" * 2_000_000)
    assert not Job.objects.exists()


def test_send_task_by_name_and_unknown_name() -> None:
    result = djqueue.send_task("tests.testapp.tasks.add", [1, 1])
    assert Job.objects.get(pk=result.id).task_name == "tests.testapp.tasks.add"
    with pytest.raises(NotRegistered, match=r"unregistered task 'no\.such\.task'"):
        djqueue.send_task("no.such.task")


def test_send_task_and_signatures_suggest_the_name_meant() -> None:
    meant = "did you mean 'tests.testapp.tasks.add'?"
    with pytest.raises(NotRegistered, match=re.escape(meant)):
        djqueue.send_task("tests.testapp.tasks.ad", [1, 1])
    with pytest.raises(NotRegistered, match=re.escape(meant)):
        djqueue.signature("tests.testapp.tasks.adds", args=(1, 1))
    assert not Job.objects.exists()


def test_delay_many_inserts_thousands_in_one_statement(
    django_assert_max_num_queries: Any,
) -> None:
    with django_assert_max_num_queries(1):
        results = tasks.add.delay_many([(n, n) for n in range(3000)])
    assert len(results) == 3000
    assert Job.objects.count() == 3000
    assert list(Job.objects.order_by("id").values_list("args", flat=True)[:2]) == [
        [0, 0],
        [1, 1],
    ]


def test_apply_many_chunks_by_bulk_batch_size(
    settings: Any, django_assert_num_queries: Any
) -> None:
    settings.DJQUEUE = {"BULK_BATCH_SIZE": 100}
    with django_assert_num_queries(3):
        tasks.add.apply_many([((n,), {"y": 1}) for n in range(250)], queue="bulk")
    assert Job.objects.filter(queue="bulk").count() == 250


def test_delay_many_with_bad_item_inserts_nothing() -> None:
    with pytest.raises(TypeError, match=r"args\[0\]|argument 'x'"):
        tasks.add.delay_many([(1, 2), (object(), 2)])
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rollback_leaves_no_job() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.delay(1, 2)
        raise RuntimeError("the view failed")
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_job_is_invisible_to_workers_until_commit(other_connection: Any) -> None:
    with transaction.atomic():
        result = tasks.add.delay(1, 2)
        seen = other_connection.execute(
            "SELECT count(*) FROM djqueue_job WHERE id = %s", [result.id]
        ).fetchone()
        assert seen == (0,)
    other_connection.rollback()
    seen = other_connection.execute(
        "SELECT count(*) FROM djqueue_job WHERE id = %s", [result.id]
    ).fetchone()
    assert seen == (1,)


@pytest.mark.django_db(transaction=True)
def test_delay_on_commit_waits_for_commit_and_keeps_its_id() -> None:
    with transaction.atomic():
        result = tasks.add.delay_on_commit(4, 5)
        assert not Job.objects.exists()
    assert str(Job.objects.get().id) == result.id


@pytest.mark.django_db(transaction=True)
def test_apply_async_on_commit_sends_nothing_on_rollback() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.apply_async_on_commit((1, 2), countdown=5)
        raise RuntimeError
    assert not Job.objects.exists()


def test_delay_on_commit_validates_at_call_time() -> None:
    with pytest.raises(TypeError, match="JSON cannot carry"):
        tasks.add.delay_on_commit(object(), 2)


@pytest.mark.django_db(transaction=True)
def test_enqueue_notifies_listeners_of_the_queue(other_connection: Any) -> None:
    other_connection.autocommit = True
    other_connection.execute("LISTEN djqueue")
    tasks.named.delay()
    notes = list(other_connection.notifies(timeout=2, stop_after=1))
    assert [n.payload for n in notes] == ["special"]


def test_eager_setting_runs_at_send_time(settings: Any) -> None:
    settings.DJQUEUE = {"EAGER": True}
    assert tasks.add.delay(2, 2).get() == 4
    # As Celery's: the failure is the result, raised by get().
    failed = tasks.fail.delay("eager failure")
    assert failed.state == "FAILURE" and isinstance(failed.result, ValueError)
    with pytest.raises(ValueError, match="eager failure"):
        failed.get()
    settings.DJQUEUE = {"EAGER": True, "EAGER_PROPAGATES": True}
    with pytest.raises(ValueError, match="eager failure"):
        tasks.fail.delay("eager failure")
    assert not Job.objects.exists()


def test_testing_helpers_run_pending_jobs_in_process() -> None:
    tasks.add.delay(1, 2)
    tasks.add.delay(3, 4)
    tasks.named.delay()
    later = tasks.add.apply_async((9, 9), countdown=3600)
    testing.assert_enqueued(tasks.add, args=[1, 2], count=1)
    with pytest.raises(AssertionError, match="was not enqueued"):
        testing.assert_enqueued(tasks.add, args=[7, 7])
    outcomes = testing.run_pending()
    assert sorted(o.task_name for o in outcomes) == [
        "custom.name",
        "tests.testapp.tasks.add",
        "tests.testapp.tasks.add",
    ]
    assert list(
        testing.enqueued(tasks.add, state=states.SUCCESS).values_list("result", flat=True)
    ) == [3, 7]
    assert later.state == states.PENDING


def test_pytest_fixtures(djqueue_jobs: Any) -> None:
    tasks.add.delay(5, 5)
    djqueue_jobs.assert_enqueued(tasks.add, args=[5, 5])
    [outcome] = djqueue_jobs.run_pending()
    assert outcome.state == states.SUCCESS
    assert djqueue_jobs.enqueued(tasks.add, state=None).get().result == 10


def test_eager_fixture(djqueue_eager: None) -> None:
    assert tasks.add.delay(1, 1).get() == 2
    assert not Job.objects.exists()


def test_connection_is_postgresql() -> None:
    assert connection.vendor == "postgresql"


def test_bulk_enqueue_keeps_options_and_tricky_arguments() -> None:
    import decimal

    moment = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    calls = [
        (('quote " and \\ backslash', "snow ☃"), {"amount": decimal.Decimal("1.5")}),
        ((None, [1, {"k": datetime.date(2030, 1, 1)}]), {}),
    ]
    before = timezone.now()
    results = tasks.echo.apply_many(
        calls, queue='bulk "q"', priority=-3, countdown=30, expires=moment
    )
    rows = {str(row.id): row for row in Job.objects.all()}
    first, second = rows[results[0].id], rows[results[1].id]
    assert first.args == ['quote " and \\ backslash', "snow ☃"]
    assert first.kwargs == {"amount": decimal.Decimal("1.5")}
    assert second.args == [None, [1, {"k": datetime.date(2030, 1, 1)}]]
    assert (first.queue, first.priority, first.expires_at) == ('bulk "q"', -3, moment)
    assert first.eta >= before + datetime.timedelta(seconds=29)
    eta_results = tasks.add.apply_many([((1, 2), {})], eta=moment)
    assert Job.objects.get(pk=eta_results[0].id).eta == moment


def test_task_enqueued_signal_names_the_new_jobs() -> None:
    from djqueue.core import signals

    heard: list[Any] = []

    def receiver(sender: Any, job_ids: list[Any], **kwargs: Any) -> None:
        heard.append((sender, job_ids))

    signals.task_enqueued.connect(receiver, weak=False)
    try:
        one = tasks.add.delay(1, 2)
        many = tasks.add.delay_many([(1, 1), (2, 2)])
    finally:
        signals.task_enqueued.disconnect(receiver)
    assert heard == [
        (tasks.add, [one.id]),
        (tasks.add, [r.id for r in many]),
    ]


@pytest.mark.django_db(transaction=True)
def test_adelay_from_async_code() -> None:
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    async def send() -> Any:
        try:
            return await tasks.add.adelay(3, 4)
        finally:
            await sync_to_async(connections.close_all, thread_sensitive=True)()

    result = asyncio.run(send())
    assert Job.objects.get(pk=result.id).args == [3, 4]
