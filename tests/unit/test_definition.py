import datetime
import decimal
from typing import Any

import pytest

import djqueue
from djqueue.core import registry
from djqueue.core.exceptions import NotRegistered, PayloadTooLarge
from tests.testapp import tasks


def test_names_default_to_module_and_function() -> None:
    assert tasks.add.name == "tests.testapp.tasks.add"
    assert registry.get("tests.testapp.tasks.add") is tasks.add


def test_explicit_name_queue_and_priority() -> None:
    assert registry.get("custom.name") is tasks.named
    job = tasks.named.prepare()
    assert (job.queue, job.priority) == ("special", 5)


def test_calling_a_task_runs_it_inline() -> None:
    assert tasks.add(2, 3) == 5


def test_shared_task_is_the_same_decorator() -> None:
    assert djqueue.shared_task is djqueue.task


def test_decorator_with_and_without_parentheses() -> None:
    @djqueue.task
    def plain() -> int:
        return 1

    @djqueue.task(name="tests.unit.with_options", max_retries=7)
    def configured() -> int:
        return 2

    assert isinstance(plain, djqueue.Task)
    assert configured.max_retries == 7
    assert registry.get("tests.unit.with_options") is configured


def test_unknown_task_name_raises_not_registered() -> None:
    with pytest.raises(NotRegistered, match=r"unregistered task 'nope\.missing'") as caught:
        registry.get("nope.missing")
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("tests.testapp.tasks.ad", "tests.testapp.tasks.add"),  # a letter short
        ("tests.testapp.tasks.eocho", "tests.testapp.tasks.echo"),  # a letter too many
        ("tests.testapp.task.sleep", "tests.testapp.tasks.sleep"),  # the module misspelt
        ("testapp.tasks.record_pid", "tests.testapp.tasks.record_pid"),  # module cut short
        ("typed_rountrip", "tests.testapp.tasks.typed_roundtrip"),  # no module at all
    ],
)
def test_an_unknown_name_close_to_a_task_says_did_you_mean(typed: str, meant: str) -> None:
    with pytest.raises(NotRegistered) as caught:
        registry.get(typed)
    message = str(caught.value)
    assert f"unregistered task {typed!r}; did you mean {meant!r}?" in message
    assert "\n" not in message


def test_two_tasks_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match=r"two tasks are named 'custom\.name'"):

        @djqueue.task(name="custom.name")
        def impostor() -> None:
            return None


def test_unencodable_positional_argument_is_named() -> None:
    with pytest.raises(TypeError) as caught:
        tasks.add.prepare([object(), 1])
    message = str(caught.value)
    assert "argument 'x' (args[0])" in message
    assert "has type object" in message
    assert "JSON cannot carry" in message


def test_unencodable_keyword_argument_is_named() -> None:
    with pytest.raises(TypeError, match=r"argument 'y'\['when'\] has type set"):
        tasks.add.prepare(kwargs={"x": 1, "y": {"when": {1}}})


def test_oversized_payload_is_refused(settings: Any) -> None:
    settings.DJQUEUE = {"MAX_PAYLOAD_BYTES": 100}
    with pytest.raises(PayloadTooLarge, match="over the MAX_PAYLOAD_BYTES limit of 100"):
        tasks.echo.prepare(["x" * 200])


@pytest.mark.parametrize("priority", [-101, 101, 1.5, True, "high"])
def test_priority_out_of_range_is_refused(priority: Any) -> None:
    with pytest.raises(ValueError, match="priority must be a whole number from -100 to 100"):
        tasks.add.prepare([1, 2], priority=priority)


def test_countdown_and_eta_together_are_refused() -> None:
    with pytest.raises(ValueError, match="countdown or eta"):
        tasks.add.prepare([1, 2], countdown=1, eta=datetime.datetime.now(datetime.UTC))


def test_naive_eta_is_read_as_local_time() -> None:
    job = tasks.add.prepare([1, 2], eta=datetime.datetime(2030, 1, 1, 12))
    assert job.eta is not None and job.eta.tzinfo is not None


def test_expires_accepts_seconds_timedelta_and_datetime() -> None:
    assert tasks.add.prepare([1, 2], expires=30).expires_in == 30
    assert tasks.add.prepare([1, 2], expires=datetime.timedelta(minutes=1)).expires_in == 60
    moment = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    assert tasks.add.prepare([1, 2], expires=moment).expires_at == moment


@pytest.mark.parametrize(
    ("send", "call"),
    [
        (lambda **options: tasks.add.prepare([1, 2], **options), "prepare"),
        (lambda **options: tasks.add.apply_async([1, 2], **options), "apply_async"),
        (
            lambda **options: tasks.add.apply_async([1, 2], link=tasks.add.s(1), **options),
            "apply_async",
        ),
        (lambda **options: tasks.add.apply_async_on_commit([1, 2], **options), "prepare"),
        (lambda **options: tasks.add.delay_many([[1, 2]], **options), "prepare"),
    ],
)
def test_an_unknown_option_is_refused_before_anything_is_sent(send: Any, call: str) -> None:
    # The options arrive as **options (one typed list, JobOptions): a name that is not
    # one of them fails as a keyword the function does not take.
    with pytest.raises(TypeError, match=rf"{call}\(\) got an unexpected keyword argument 'queues'"):
        send(queues="fast")


def test_bad_task_id_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a UUID"):
        tasks.add.prepare([1, 2], task_id="not-a-uuid")


def test_args_must_be_a_sequence() -> None:
    with pytest.raises(TypeError, match=r"args of tests\.testapp\.tasks\.add must be a list"):
        tasks.add.prepare("12")  # type: ignore[arg-type]


def test_max_attempts_follows_max_retries() -> None:
    assert tasks.add.prepare([1, 2]).max_attempts == 4
    assert tasks.sleep_unlimited.prepare([1]).max_attempts is None


def test_apply_runs_locally_and_keeps_errors() -> None:
    ok = tasks.typed_roundtrip.apply(
        [
            datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            datetime.date(2026, 1, 1),
            datetime.time(1),
            decimal.Decimal("2.50"),
            "12345678-1234-5678-1234-567812345678",
        ]
    )
    assert ok.successful()
    assert ok.get()[3] == decimal.Decimal("2.50")
    failed = tasks.fail.apply(["no"])
    assert failed.failed()
    assert isinstance(failed.result, ValueError)
    assert "ValueError: no" in failed.traceback
    with pytest.raises(ValueError, match="no"):
        failed.get()


def test_apply_runs_retries_at_once() -> None:
    result = tasks.retry_then_succeed.apply([2])
    assert result.get() == 2


def test_apply_gives_the_bound_task_its_request() -> None:
    result = tasks.whoami.apply(task_id="12345678-1234-5678-1234-567812345678")
    assert result.get()["id"] == "12345678-1234-5678-1234-567812345678"


def test_retry_outside_retries_reraises_the_error() -> None:
    result = tasks.always_flaky.apply()
    assert result.failed()
    assert isinstance(result.result, ConnectionError)


def test_request_is_empty_outside_a_worker() -> None:
    assert tasks.whoami.request.id is None


def test_empty_queue_name_is_refused() -> None:
    with pytest.raises(ValueError, match="queue must be a non-empty name"):
        tasks.add.prepare([1, 2], queue="")


def test_apply_many_refuses_a_shared_task_id() -> None:
    with pytest.raises(ValueError, match="task_id names one job"):
        tasks.add.apply_many([((1, 2), {})], task_id="12345678-1234-5678-1234-567812345678")


def test_same_name_from_another_module_is_refused() -> None:
    def add(x: int, y: int) -> int:
        return x - y

    add.__module__ = "elsewhere.tasks"
    add.__qualname__ = "add"
    with pytest.raises(ValueError, match="two tasks are named"):
        djqueue.task(name="tests.testapp.tasks.add")(add)


def test_bare_retry_waits_the_default_delay() -> None:
    from djqueue.core import executor
    from djqueue.core.exceptions import Retry
    from djqueue.core.records import ClaimedJob

    @djqueue.task(name="tests.unit.bare_retry", default_retry_delay=42)
    def bare() -> None:
        raise Retry()

    job = ClaimedJob(djqueue_ids_new(), bare.name, "[]", "{}", 1, 0, "default", 0, None, False)
    outcome = executor.execute(job)
    assert (outcome.state, outcome.retry_in) == ("RETRY", 42)


def djqueue_ids_new() -> Any:
    from djqueue.core import ids

    return ids.new_id()


def test_sys_exit_in_a_task_is_a_failure_not_an_exit() -> None:
    @djqueue.task(name="tests.unit.exits")
    def exits() -> None:
        raise SystemExit(3)

    result = exits.apply()
    assert result.failed()
    assert isinstance(result.result, SystemExit)


def test_undecodable_arguments_fail_the_job() -> None:
    from djqueue.core import executor
    from djqueue.core.records import ClaimedJob

    job = ClaimedJob(
        djqueue_ids_new(), tasks.add.name, "[1,", "{}", 1, 0, "default", 0, None, False
    )
    outcome = executor.execute(job)
    assert outcome.state == "FAILURE"
    assert "arguments cannot be decoded" in outcome.error_message
