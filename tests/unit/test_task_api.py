"""The task API as a Celery user writes it: decorator options, base classes, argument
checks, map/starmap/chunks, states and exceptions (no database needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import djqueue
from djqueue import exceptions, states
from djqueue.client import canvas, mapping, planning
from tests.testapp import tasks


def test_celery_state_sets_are_celerys() -> None:
    assert frozenset({"SUCCESS", "FAILURE", "REVOKED"}) == states.READY_STATES
    assert (
        frozenset({"PENDING", "RECEIVED", "STARTED", "REJECTED", "RETRY"}) == states.UNREADY_STATES
    )
    assert frozenset({"RETRY", "FAILURE", "REVOKED"}) == states.EXCEPTION_STATES
    assert frozenset({"FAILURE", "REVOKED"}) == states.PROPAGATE_STATES
    assert (states.REJECTED, states.IGNORED, states.RECEIVED) == (
        "REJECTED",
        "IGNORED",
        "RECEIVED",
    )


def test_exceptions_are_importable_from_djqueue_exceptions() -> None:
    for name in (
        "Ignore",
        "Reject",
        "Retry",
        "MaxRetriesExceededError",
        "SoftTimeLimitExceeded",
        "TimeLimitExceeded",
    ):
        error = getattr(exceptions, name)
        assert issubclass(error, Exception)
        assert error.__module__ == "djqueue.exceptions"
    reject = exceptions.Reject("busy", requeue=True)
    assert (reject.reason, reject.requeue, str(reject)) == ("busy", True, "busy")
    assert exceptions.Reject().requeue is False


def test_typing_checks_arguments_when_sending() -> None:
    with pytest.raises(TypeError, match=r"add\(\) cannot take these arguments.*\(x, y\)"):
        tasks.add.prepare((1,))
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        tasks.add.prepare((1, 2), {"z": 3})
    assert json.loads(tasks.add.prepare((1,), {"y": 2}).args) == [1]


def test_typing_false_sends_calls_unchecked() -> None:
    assert tasks.untyped.typing is False
    assert json.loads(tasks.untyped.prepare((1, 2, 3)).args) == [1, 2, 3]


def test_bound_tasks_are_checked_without_self() -> None:
    with pytest.raises(TypeError, match=r"\(action\)"):
        tasks.hooked.prepare(("a", "b"))
    tasks.hooked.prepare(("ok",))


def test_a_partial_workflow_step_is_checked_with_room_for_the_result_before_it() -> None:
    tasks.add.prepare((1,), partial=True)  # x comes from the step before
    with pytest.raises(TypeError):
        tasks.add.prepare((1, 2), partial=True)


def test_a_chain_with_wrong_arguments_fails_when_sent_not_halfway() -> None:
    plan = planning.Plan()
    plan.add(canvas.chain(tasks.add.s(1, 1), tasks.add.s(2)), waiting=False, defaults={})
    assert len(plan.jobs()) == 2
    plan = planning.Plan()
    plan.add(canvas.chain(tasks.add.s(1, 1), tasks.add.s(2, 3)), waiting=False, defaults={})
    with pytest.raises(TypeError, match="cannot take these arguments"):
        plan.jobs()


def test_retry_kwargs_are_checked() -> None:
    assert tasks.autoretry_twice.retry_kwargs == {"max_retries": 2, "countdown": 0}
    with pytest.raises(TypeError, match="unknown key"):
        djqueue.task(name="tests.unit.bad_retry_kwargs", retry_kwargs={"countdwn": 1})(lambda: None)


def test_retry_kwargs_max_retries_widens_the_attempt_budget() -> None:
    # max_retries=0 on the task, 2 in retry_kwargs: three runs in all.
    assert tasks.autoretry_twice.prepare().max_attempts == 3


def test_throws_takes_exception_classes() -> None:
    assert tasks.expected_failure.throws == (KeyError,)
    with pytest.raises(TypeError, match="exception classes"):
        djqueue.task(name="tests.unit.bad_throws", throws=("KeyError",))(lambda: None)


def test_acks_late_is_accepted() -> None:
    made = djqueue.task(name="tests.unit.acks_late", acks_late=True)(lambda: None)
    assert made.acks_late is True


def test_base_makes_the_task_an_instance_of_the_subclass() -> None:
    assert isinstance(tasks.hooked, tasks.Hooked)
    assert isinstance(tasks.hooked, djqueue.Task)


def test_base_class_attributes_are_defaults_the_decorator_overrides() -> None:
    assert (tasks.patient.max_retries, tasks.patient.default_retry_delay) == (5, 0)
    made = djqueue.task(name="tests.unit.patient_but_less", base=tasks.PatientTask, max_retries=1)(
        lambda: None
    )
    assert (made.max_retries, made.default_retry_delay) == (1, 0)


def test_base_must_be_a_task_subclass() -> None:
    with pytest.raises(TypeError, match=r"subclass of djqueue\.Task"):
        djqueue.task(base=object)


def test_map_and_starmap_are_one_job_of_a_builtin_task() -> None:
    mapped = tasks.add.starmap([(1, 2), (3, 4)])
    assert isinstance(mapped, mapping.xstarmap)
    assert mapped.task.name == "djqueue.starmap"
    assert mapped.kwargs == {"task": tasks.add.name, "it": [(1, 2), (3, 4)]}
    assert repr(mapped) == "[tests.testapp.tasks.add(*x) for x in [(1, 2), (3, 4)]]"
    assert repr(tasks.show.map(range(3))) == "[tests.testapp.tasks.show(x) for x in [0, 1, 2]]"


def test_map_checks_every_call_when_built() -> None:
    with pytest.raises(TypeError, match="cannot take these arguments"):
        tasks.add.map([1, 2])
    with pytest.raises(TypeError, match="argument tuples"):
        tasks.add.starmap([1, 2])


def test_map_goes_to_the_queue_of_its_task() -> None:
    assert tasks.named.map([]).options["queue"] == "special"


def test_chunks_is_a_group_of_starmaps() -> None:
    parts = tasks.add.chunks(zip(range(5), range(5), strict=True), 2).group()
    assert [len(sig.kwargs["it"]) for sig in parts.tasks] == [2, 2, 1]
    assert all(isinstance(sig, mapping.xstarmap) for sig in parts.tasks)
    with pytest.raises(ValueError, match="chunk size"):
        tasks.add.chunks([], 0)


def test_update_state_checks_its_input_outside_a_worker() -> None:
    with pytest.raises(ValueError, match="state name"):
        tasks.add.update_state(state="")
    with pytest.raises(TypeError, match="JSON"):
        tasks.add.update_state(state="PROGRESS", meta=object())
    with pytest.raises(ValueError, match="only report the state of the running job"):
        tasks.add.update_state(task_id="8b4e5a4c-1f87-4f4c-9d47-0a3a7d1c2b3e", state="X")
    tasks.add.update_state(state="PROGRESS", meta={"done": 1})  # nothing to report to


def _hook_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("hook ")]


def test_hooks_run_with_celerys_arguments_when_applied(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="djqueue.worker")
    result = tasks.hooked.apply(("fine",))
    task_id = result.id
    assert _hook_lines(caplog) == [
        f"hook before_start {task_id} ['fine'] {{}}",
        f"hook on_success fine {task_id} ['fine'] {{}}",
        f"hook after_return SUCCESS 'fine' {task_id} None",
    ]


def test_failure_and_retry_hooks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="djqueue.worker")
    failed = tasks.hooked.apply(("fail",))
    assert failed.state == states.FAILURE
    assert _hook_lines(caplog)[1:] == [
        f"hook on_failure KeyError('boom') {failed.id} ['fail'] True",
        f"hook after_return FAILURE KeyError('boom') {failed.id} None",
    ]
    caplog.clear()
    retried = tasks.hooked.apply(("retry",))
    assert retried.get() == "retry"
    lines = _hook_lines(caplog)
    assert f"hook on_retry ConnectionError('again') {retried.id} ['retry'] Retry" in lines
    assert lines[-1] == f"hook after_return SUCCESS 'retry' {retried.id} None"


def test_a_failing_hook_is_logged_and_the_outcome_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(djqueue.Task[Any, Any]):
        def on_success(self, retval: Any, task_id: Any, args: Any, kwargs: Any) -> None:
            raise RuntimeError("hook bug")

    made = djqueue.task(name="tests.unit.broken_hook", base=Broken)(lambda: 7)
    assert made.apply().get() == 7
    assert "its on_success hook raised" in caplog.text


def test_ignore_and_reject_when_applied() -> None:
    ignored = tasks.ignore.apply()
    assert (ignored.state, ignored.get()) == (states.IGNORED, None)
    rejected = tasks.reject.apply(("no",))
    assert rejected.state == states.REJECTED
    with pytest.raises(exceptions.Reject, match="no"):
        rejected.get()
    # Run here, a requeue has no queue to go back to: rejected, as in Celery.
    assert tasks.reject.apply(("no",), {"requeue": True}).state == states.REJECTED


def test_throws_logs_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="djqueue.worker")
    result = tasks.expected_failure.apply(("known",))
    assert result.state == states.FAILURE
    [record] = [r for r in caplog.records if "expected_failure" in r.getMessage()]
    assert record.levelname == "INFO"
    assert "raised expected: KeyError" in record.getMessage()
    assert "Traceback" not in record.getMessage()


def test_retry_kwargs_drive_autoretry() -> None:
    assert tasks.autoretry_twice.apply().get() == 2


def test_options_of_a_base_class_drive_retries() -> None:
    assert tasks.patient.apply().get() == 4


def test_apply_runs_signatures_and_workflows_here_as_celerys_does() -> None:
    assert tasks.add.s(2).apply((3,)).get() == 5
    assert djqueue.chain(tasks.add.s(1, 2), tasks.mul.s(10)).apply().get() == 30
    assert djqueue.chain(tasks.add.s(2), tasks.mul.s(10)).apply((1,)).get() == 30
    assert djqueue.group(tasks.add.s(i, i) for i in range(3)).apply().get() == [0, 2, 4]
    made = djqueue.chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.show.s()).apply()
    assert made.get() == "result: [2, 4]"
