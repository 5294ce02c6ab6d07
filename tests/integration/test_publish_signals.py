"""before_task_publish and after_task_publish: sent by the sending process around the
write, once per job, whichever way the job was sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import djqueue
from djqueue.core import signals
from djqueue.db.models import Job
from djqueue.integrations.testing import run_pending
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def published() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    def before(sender: Any, **kwargs: Any) -> None:
        # The row is not written yet when the signal goes out.
        written = Job.objects.filter(pk=kwargs["headers"]["id"]).exists()
        seen.append(("before", {"sender": sender, "written": written, **kwargs}))

    def after(sender: Any, **kwargs: Any) -> None:
        written = Job.objects.filter(pk=kwargs["headers"]["id"]).exists()
        seen.append(("after", {"sender": sender, "written": written, **kwargs}))

    signals.before_task_publish.connect(before, weak=False)
    signals.after_task_publish.connect(after, weak=False)
    yield seen
    signals.before_task_publish.disconnect(before)
    signals.after_task_publish.disconnect(after)


def test_apply_async_sends_both_with_celerys_arguments(published: list[Any]) -> None:
    result = tasks.add.apply_async((2, 3), queue="q1", priority=4, countdown=30)
    assert [when for when, _ in published] == ["before", "after"]
    before, after = (kwargs for _, kwargs in published)
    assert before["sender"] == "tests.testapp.tasks.add"
    assert before["written"] is False and after["written"] is True
    assert before["body"][0] == [2, 3] and before["body"][1] == {}
    assert before["headers"]["id"] == str(result.id)
    assert before["headers"]["task"] == "tests.testapp.tasks.add"
    assert before["routing_key"] == "q1" and before["exchange"] == ""
    assert before["properties"] == {"priority": 4}
    assert {"declare", "retry_policy"} <= set(before)
    assert after["headers"] == before["headers"] and after["body"] == before["body"]


def test_each_job_of_a_bulk_send_or_a_workflow_is_announced(published: list[Any]) -> None:
    many = tasks.add.delay_many([(1, 1), (2, 2)])
    workflow = djqueue.chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async()
    befores = [kwargs["headers"]["id"] for when, kwargs in published if when == "before"]
    afters = [kwargs["headers"]["id"] for when, kwargs in published if when == "after"]
    assert befores == afters
    assert [str(r.id) for r in many] == befores[:2]
    assert len(befores) == 4 and str(workflow.id) in befores


def test_a_failing_receiver_does_not_stop_the_send(caplog: Any) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("publish receiver bug")

    signals.before_task_publish.connect(broken, weak=False)
    try:
        result = tasks.add.delay(1, 2)
    finally:
        signals.before_task_publish.disconnect(broken)
    assert Job.objects.filter(pk=result.id).exists()
    assert "publish receiver bug" in caplog.text


@pytest.fixture
def stamping() -> Iterator[None]:
    """A receiver that stamps every job, as tracing code written for Celery does."""

    def stamp(sender: Any, headers: dict[str, Any], **kwargs: Any) -> None:
        headers["tenant"] = headers.get("tenant", "stamped")
        headers["trace"] = f"trace-{headers['id'][:8]}"
        headers["retries"] = 99  # Celery's own header: describes the job, changes nothing

    signals.before_task_publish.connect(stamp, weak=False)
    yield
    signals.before_task_publish.disconnect(stamp)


@pytest.mark.usefixtures("stamping")
def test_headers_a_receiver_adds_reach_the_task() -> None:
    plain = tasks.describe_request.delay()
    given = tasks.describe_request.apply_async(headers={"tenant": "acme"})
    many = tasks.describe_request.delay_many([(), ()])
    workflow = djqueue.chain(tasks.describe_request.si(), tasks.describe_request.si()).delay()
    run_pending()

    seen = plain.get(timeout=1)
    assert seen["headers"] == {"tenant": "stamped", "trace": f"trace-{plain.id[:8]}"}
    assert seen["tenant"] == "stamped" and seen["retries"] == 0
    assert given.get(timeout=1)["headers"] == {"tenant": "acme", "trace": f"trace-{given.id[:8]}"}
    assert [r.get(timeout=1)["tenant"] for r in many] == ["stamped", "stamped"]
    assert workflow.get(timeout=1)["tenant"] == "stamped"
    assert workflow.parent is not None and workflow.parent.get(timeout=1)["tenant"] == "stamped"
