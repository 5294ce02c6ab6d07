from collections.abc import Iterator
from typing import Any

import pytest

from djqueue.core import signals
from tests.testapp import tasks


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    names = ["task_prerun", "task_postrun", "task_success", "task_failure", "task_retry"]
    receivers = []
    for name in names:

        def receiver(sender: Any, name: str = name, **kwargs: Any) -> None:
            seen.append((name, {"sender": sender, **kwargs}))

        getattr(signals, name).connect(receiver, weak=False)
        receivers.append((name, receiver))
    yield seen
    for name, receiver in receivers:
        getattr(signals, name).disconnect(receiver)


def test_success_sends_prerun_postrun_and_success(heard: list[Any]) -> None:
    tasks.add.apply([2, 3])
    assert [name for name, _ in heard] == ["task_prerun", "task_postrun", "task_success"]
    assert heard[0][1]["sender"] is tasks.add
    assert heard[0][1]["args"] == [2, 3]
    assert heard[1][1]["retval"] == 5
    assert heard[2][1]["result"] == 5


def test_failure_sends_the_exception(heard: list[Any]) -> None:
    tasks.fail.apply(["bad"])
    names = [name for name, _ in heard]
    assert names == ["task_prerun", "task_postrun", "task_failure"]
    failure = heard[-1][1]
    assert isinstance(failure["exception"], ValueError)
    assert "ValueError: bad" in failure["traceback"]


def test_retry_sends_retry_with_its_reason(heard: list[Any]) -> None:
    tasks.retry_then_succeed.apply([1])
    retries = [kwargs for name, kwargs in heard if name == "task_retry"]
    assert len(retries) == 1
    assert isinstance(retries[0]["reason"], ConnectionError)
    assert retries[0]["countdown"] == 0
    assert [name for name, _ in heard][-1] == "task_success"


def test_a_failing_receiver_does_not_change_the_outcome(caplog: Any) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.task_prerun.connect(broken, weak=False)
    try:
        result = tasks.add.apply([1, 1])
    finally:
        signals.task_prerun.disconnect(broken)
    assert result.get() == 2
    assert "receiver bug" in caplog.text
