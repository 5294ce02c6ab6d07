import pytest

from djqueue.core import exceptions


def test_builtin_errors_are_rebuilt_as_themselves() -> None:
    error = exceptions.rebuild("KeyError", "'missing'")
    assert isinstance(error, KeyError)


def test_djqueue_errors_are_rebuilt() -> None:
    error = exceptions.rebuild("djqueue.exceptions.WorkerLostError", "worker lost")
    assert isinstance(error, exceptions.WorkerLostError)
    assert str(error) == "worker lost"


def test_unknown_types_become_task_error_carrying_both() -> None:
    error = exceptions.rebuild("os.system", "rm -rf /")
    assert isinstance(error, exceptions.TaskError)
    assert error.error_type == "os.system"
    assert error.message == "rm -rf /"


def test_listed_result_exceptions_are_rebuilt(settings: object) -> None:
    settings.DJQUEUE = {"RESULT_EXCEPTIONS": ["tests.testapp.tasks.CustomError"]}  # type: ignore[attr-defined]
    from tests.testapp.tasks import CustomError

    error = exceptions.rebuild("tests.testapp.tasks.CustomError", "boom")
    assert isinstance(error, CustomError)


def test_qualified_name() -> None:
    assert exceptions.qualified_name(ValueError) == "ValueError"
    assert exceptions.qualified_name(exceptions.TaskError) == "djqueue.exceptions.TaskError"


def test_timeout_error_is_also_the_builtin_one() -> None:
    with pytest.raises(TimeoutError):
        raise exceptions.TimeoutError("late")
