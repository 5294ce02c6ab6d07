"""Workflows against PostgreSQL, run in this process with ``djqueue.testing.run_pending``.

The examples are those of Celery's canvas documentation.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

import djqueue
from djqueue.core import states
from djqueue.db.models import Group, Job
from djqueue.integrations.testing import run_pending
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def _job(result: Any) -> Job:
    return Job.objects.get(pk=result.id)


def test_a_chain_passes_each_result_on() -> None:
    result = djqueue.chain(tasks.add.s(5), tasks.mul.s(10), tasks.show.s()).apply_async((2,))

    assert result.state == states.PENDING  # its row exists before anything ran
    run_pending()

    assert result.get(timeout=1) == "result: 70"
    assert result.parent.get(timeout=1) == 70
    assert result.parent.parent.get(timeout=1) == 7
    assert result.parent.parent.parent is None


def test_the_pipe_makes_a_chain_and_si_ignores_the_result() -> None:
    result = (tasks.add.s(2, 2) | tasks.add.si(10, 10) | tasks.mul.s(3)).delay()
    run_pending()
    assert result.get(timeout=1) == 60


def test_later_steps_wait_until_their_turn() -> None:
    result = djqueue.chain(tasks.add.s(1, 1), tasks.mul.s(3)).apply_async()
    first = result.parent
    assert _job(result).eta.year == 9999 or _job(result).eta > _job(first).eta
    # Only the first step can be claimed.
    claimed = run_pending(limit=1)
    assert [str(outcome.job_id) for outcome in claimed] == [first.id]
    assert _job(result).args == [2, 3]
    assert _job(result).workflow["parent"] == str(first.id)


def test_a_group_of_1000_returns_results_in_order() -> None:
    result = djqueue.group(tasks.add.s(i, i) for i in range(1000)).apply_async()

    assert isinstance(result, djqueue.GroupResult)
    assert not result.ready()
    run_pending()

    assert result.get(timeout=5) == [2 * i for i in range(1000)]
    assert result.ready() and result.successful()
    assert result.completed_count() == 1000
    restored = djqueue.GroupResult.restore(result.id)
    assert restored is not None and restored.get(timeout=5)[:3] == [0, 2, 4]
    assert djqueue.GroupResult.restore(djqueue.AsyncResult(result.results[0].id).id) is None


def test_a_chord_of_100_thumbnails_feeds_the_index_task() -> None:
    header = djqueue.group(tasks.thumbnail.s(f"photo{i}") for i in range(100))
    result = djqueue.chord(header)(tasks.index_thumbnails.s())

    run_pending()

    assert result.get(timeout=5) == {"count": 100, "first": "thumbs/photo0.jpg"}
    assert isinstance(result.parent, djqueue.GroupResult)
    assert result.parent.get(timeout=5)[99] == "thumbs/photo99.jpg"
    counter = Group.objects.get(pk=result.parent.id)
    assert counter.remaining == 0 and str(counter.body_id) == result.id
    assert _job(result).attempt == 1


def test_a_group_piped_into_a_task_is_a_chord() -> None:
    result = (djqueue.group(tasks.add.s(i, i) for i in range(10)) | tasks.xsum.s()).delay()
    run_pending()
    assert result.get(timeout=1) == 90


def test_a_chord_in_a_chain() -> None:
    workflow = djqueue.chain(
        tasks.add.s(1, 1),
        djqueue.group(tasks.mul.s(i) for i in range(1, 4)),
        tasks.xsum.s(),
        tasks.show.s(),
    )
    result = workflow.apply_async()
    run_pending()
    assert result.get(timeout=1) == "result: 12"  # 2*1 + 2*2 + 2*3


def test_a_failing_step_stops_the_chain_and_runs_link_error() -> None:
    result = djqueue.chain(
        tasks.add.s(1, 1), tasks.fail.si("bad input"), tasks.mul.s(2), tasks.show.s()
    ).apply_async(link_error=tasks.on_chain_error.s())

    run_pending()

    show, mul, failed, first = (
        result,
        result.parent,
        result.parent.parent,
        result.parent.parent.parent,
    )
    assert first.state == states.SUCCESS
    assert failed.state == states.FAILURE
    # As Celery stores a failed step's error on the rest of its chain: the later steps
    # never ran, and end FAILURE with the same error and traceback.
    failed_row = _job(failed)
    for later in (mul, show):
        row = _job(later)
        assert row.state == states.FAILURE and row.attempt == 0
        assert (row.error_type, row.error_message) == ("ValueError", "bad input")
        assert row.traceback == failed_row.traceback != ""
    for handle in (result, djqueue.AsyncResult(result.id), mul):
        with pytest.raises(ValueError, match="bad input"):
            handle.get(timeout=1)
    errbacks = Job.objects.filter(task_name="tests.testapp.tasks.on_chain_error")
    assert [job.result for job in errbacks] == [f"{failed.id} failed: ValueError: bad input"]


def test_link_runs_with_the_result() -> None:
    tasks.add.apply_async((2, 2), link=tasks.mul.s(10), link_error=tasks.on_chain_error.s())
    run_pending()
    linked = Job.objects.get(task_name="tests.testapp.tasks.mul")
    assert (linked.args, linked.result) == ([4, 10], 40)
    assert not Job.objects.filter(task_name="tests.testapp.tasks.on_chain_error").exists()


def test_a_chord_with_a_failed_header_never_runs_its_body() -> None:
    header = [tasks.add.s(1, 1), tasks.fail.si("header broke"), tasks.add.s(2, 2)]
    result = djqueue.chord(header, tasks.xsum.s()).apply_async()

    run_pending()

    body = _job(result)
    assert body.state == states.FAILURE and body.attempt == 0
    failed = result.parent.results[1]
    # The chord's result raises the header task's error, as in Celery; the body's row
    # holds a ChordError that names it.
    with pytest.raises(ValueError, match="header broke"):
        result.get(timeout=1)
    with pytest.raises(djqueue.ChordError, match=rf"fail\[{failed.id}\] raised ValueError"):
        djqueue.AsyncResult(result.id).get(timeout=1)
    assert result.parent.completed_count() == 2
    assert result.parent.failed() and result.parent.ready()
    with pytest.raises(ValueError, match="header broke"):
        result.parent.get(timeout=1)
    assert isinstance(result.parent.get(timeout=1, propagate=False)[1], ValueError)
    assert Group.objects.get(pk=result.parent.id).remaining == 0


def test_retries_inside_a_step_are_transparent() -> None:
    result = (tasks.retry_then_succeed.si(2) | tasks.show.s()).delay()
    run_pending()
    assert result.get(timeout=1) == "result: 2"
    assert result.parent.job.retries == 2


def test_revoking_the_first_step_revokes_the_rest() -> None:
    result = djqueue.chain(tasks.add.s(1, 1), tasks.mul.s(2), tasks.show.s()).apply_async()
    assert result.parent.parent.revoke()

    assert run_pending() == []
    assert {_job(r).state for r in (result, result.parent)} == {states.REVOKED}
    assert "was revoked" in _job(result).error_message


def test_revoking_a_chord_header_revokes_the_body() -> None:
    result = djqueue.chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.xsum.s()).apply_async()
    assert result.parent.revoke() == 2
    assert run_pending() == []
    assert _job(result).state == states.REVOKED
    assert "chord header task" in _job(result).error_message


def test_plain_jobs_carry_no_workflow() -> None:
    tasks.add.delay(1, 2)
    run_pending()
    assert Job.objects.get().workflow is None


def test_signature_options_and_calls() -> None:
    sig = tasks.add.s(2).set(queue="canvas", priority=7)
    assert sig(3) == 5  # a local call with the partial arguments
    result = sig.delay(40)
    row = _job(result)
    assert (row.queue, row.priority, row.args) == ("canvas", 7, [40, 2])
    later = tasks.add.s(1, 1).set(countdown=60).apply_async()
    assert run_pending() == [] or _job(later).state == states.PENDING
    with pytest.raises(TypeError, match="unknown signature option"):
        tasks.add.s().set(colour="red")


def test_eager_workflows_run_at_once(settings: Any) -> None:
    settings.DJQUEUE = {"EAGER": True}
    assert djqueue.chain(tasks.add.s(5), tasks.mul.s(10), tasks.show.s()).delay(2).get() == (
        "result: 70"
    )
    assert djqueue.group(tasks.add.s(i, i) for i in range(5)).delay().get() == [0, 2, 4, 6, 8]
    assert djqueue.chord(tasks.add.s(i, i) for i in range(5))(tasks.xsum.s()).get() == 20
    # As Celery's: a failed step raises as the next one asks for its result; a failed
    # last step is the chain's FAILURE result, raised only with EAGER_PROPAGATES.
    with pytest.raises(ValueError, match="eager"):
        (tasks.add.s(1, 1) | tasks.fail.si("eager") | tasks.mul.s(2)).delay()
    last = (tasks.add.s(1, 1) | tasks.fail.si("eager")).delay()
    assert last.state == "FAILURE" and last.parent.get() == 2
    with pytest.raises(ValueError, match="header"):
        djqueue.chord([tasks.add.s(1, 1), tasks.fail.si("header")], tasks.xsum.s()).delay()
    members = djqueue.group(tasks.add.s(1, 1), tasks.fail.si("member")).delay()
    assert [r.state for r in members] == ["SUCCESS", "FAILURE"] and members.failed()
    settings.DJQUEUE = {"EAGER": True, "EAGER_PROPAGATES": True}
    with pytest.raises(ValueError, match="member"):
        djqueue.group(tasks.add.s(1, 1), tasks.fail.si("member")).delay()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM djqueue_job")
        assert cursor.fetchone() == (0,)


def test_the_admin_job_page_shows_the_workflow(admin_client: Any) -> None:
    from django.urls import reverse

    result = djqueue.chain(
        tasks.add.s(1, 1), djqueue.chord([tasks.mul.s(2), tasks.mul.s(3)], tasks.xsum.s())
    ).apply_async()
    first = result.parent.parent
    member = result.parent.results[0]

    page = admin_client.get(reverse("admin:djqueue_job_change", args=[member.id]))
    assert page.status_code == 200
    text = page.content.decode()
    assert f'parent <a href="{reverse("admin:djqueue_job_change", args=[first.id])}">' in text
    assert f"header of chord {result.parent.id}" in text
    body = admin_client.get(reverse("admin:djqueue_job_change", args=[result.id])).content
    assert f"body of chord {result.parent.id}" in body.decode()
    plain = tasks.add.delay(1, 1)
    assert admin_client.get(reverse("admin:djqueue_job_change", args=[plain.id])).status_code == 200


def test_a_step_lost_with_its_worker_stops_the_chain_when_rescued() -> None:
    from djqueue.db import broker

    result = djqueue.chain(tasks.fail_until_marker.si("never-set"), tasks.add.s(1)).apply_async(
        link_error=tasks.on_chain_error.s()
    )
    # Claimed with a lease that has already run out, by a worker that never reports.
    [claimed] = broker.claim(["default"], 10, "lost-worker", -1.0, limited=True)
    assert str(claimed.id) == result.parent.id
    # It had started: a rescue charges its attempt (one only received would not be).
    broker.mark_started("lost-worker", [(claimed.id, claimed.attempt, 0.0)])

    assert broker.rescue() == {"FAILURE": 1}  # its only attempt is used up

    row = _job(result)
    assert (row.state, row.error_type) == (states.FAILURE, "djqueue.exceptions.WorkerLostError")
    with pytest.raises(djqueue.exceptions.WorkerLostError):
        result.get(timeout=1)
    run_pending()
    errback = Job.objects.get(task_name="tests.testapp.tasks.on_chain_error")
    assert errback.args == [str(result.parent.id)] and errback.state == states.SUCCESS


# Errbacks as Celery calls them ------------------------------------------------------------


def _ran(task: Any) -> list[Any]:
    name = f"tests.testapp.tasks.{task.__name__}"
    return [job.result for job in Job.objects.filter(task_name=name).order_by("id")]


def test_an_errback_taking_request_exc_traceback_gets_them() -> None:
    failed = tasks.fail.apply_async(
        ("bad input",),
        link_error=[
            tasks.errback_with_request.s(),
            tasks.errback_with_request_and_tag.s("tagged"),
            tasks.on_chain_error.s(),
            tasks.bound_errback.s(),
        ],
    )
    run_pending()

    assert _ran(tasks.errback_with_request) == [
        {
            "id": failed.id,
            "task": "tests.testapp.tasks.fail",
            "args": ["bad input"],
            "error": "ValueError: bad input",
            "traceback": True,
        }
    ]
    assert _ran(tasks.errback_with_request_and_tag) == [
        "tagged: tests.testapp.tasks.fail ValueError"
    ]
    assert _ran(tasks.on_chain_error) == [f"{failed.id} failed: ValueError: bad input"]
    assert _ran(tasks.bound_errback) == [f"bound: {failed.id}"]


def test_a_chord_body_errback_runs_once_with_the_body_and_chord_error() -> None:
    header = [tasks.fail.si("one"), tasks.fail.si("two"), tasks.add.s(1, 1)]
    result = djqueue.chord(header, tasks.xsum.s()).apply_async(
        link_error=[tasks.errback_with_request.s(), tasks.on_chain_error.s()]
    )
    run_pending()

    [seen] = _ran(tasks.errback_with_request)
    assert seen["id"] == result.id and seen["task"] == "tests.testapp.tasks.xsum"
    assert seen["error"].startswith("ChordError: chord header task tests.testapp.tasks.fail[")
    assert seen["traceback"] is False  # Celery passes None: the body never ran
    [old_style] = _ran(tasks.on_chain_error)
    assert old_style.startswith(f"{result.id} failed: ChordError")


def test_a_group_errback_runs_for_each_member_that_fails() -> None:
    result = djqueue.group(tasks.fail.si("a"), tasks.add.s(1, 1), tasks.fail.si("b"))
    result.link_error(tasks.on_chain_error.s())
    sent = result.apply_async()
    run_pending()
    assert sorted(_ran(tasks.on_chain_error)) == sorted(
        f"{member.id} failed: ValueError: {letter}"
        for member, letter in zip((sent[0], sent[2]), "ab", strict=True)
    )


def test_a_chain_errback_runs_once_for_the_step_that_failed() -> None:
    result = djqueue.chain(tasks.add.s(1, 1), tasks.fail.si("x"), tasks.mul.s(2)).apply_async(
        link_error=tasks.errback_with_request.s()
    )
    run_pending()
    [seen] = _ran(tasks.errback_with_request)
    assert seen["id"] == result.parent.id


def test_eager_shapes_links_and_errbacks_as_celery_s(settings: Any) -> None:
    settings.DJQUEUE = {"EAGER": True}
    nested = djqueue.group(
        djqueue.group(tasks.add.s(1, 1), tasks.add.s(2, 2)),
        djqueue.chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.xsum.s()),
    ).delay()
    assert nested.get() == [2, 4, 6] and len(nested.results) == 3
    chained = djqueue.chain(tasks.add.s(1, 1), tasks.mul.s(3), tasks.add.s(1)).delay()
    assert (chained.get(), chained.parent.get(), chained.parent.parent.get()) == (7, 6, 2)
    assert chained.parent.parent.parent is None

    seen: list[Any] = []
    failed = tasks.fail.apply_async(
        ("bad",), link_error=[tasks.errback_with_request.s(), tasks.on_chain_error.s()]
    )
    assert failed.state == "FAILURE"
    linked = tasks.add.apply_async((2, 2), link=tasks.mul.s(10))
    assert linked.get() == 4
    del seen


# Nested shapes, as Celery runs them -------------------------------------------------------


def test_a_group_of_groups_is_unrolled_into_one_group() -> None:
    result = djqueue.group(
        djqueue.group(tasks.add.s(1, 1), tasks.add.s(2, 2)), tasks.add.s(3, 3)
    ).apply_async()
    run_pending()
    assert len(result.results) == 3 and result.get(timeout=1) == [2, 4, 6]
    assert result.completed_count() == 3
    restored = djqueue.GroupResult.restore(result.id)
    assert restored is not None and restored.get(timeout=1) == [2, 4, 6]


def test_a_chord_inside_a_group_gives_its_body_s_result() -> None:
    result = djqueue.group(
        djqueue.chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.xsum.s()),
        tasks.add.s(5, 5),
    ).apply_async()
    run_pending()
    assert result.get(timeout=1) == [6, 10]
    assert isinstance(result.results[0].parent, djqueue.GroupResult)


def test_a_chain_inside_a_chord_header() -> None:
    result = djqueue.chord(
        [tasks.add.s(1, 1), djqueue.chain(tasks.add.s(2, 2), tasks.mul.s(3))], tasks.xsum.s()
    ).apply_async()
    run_pending()
    assert result.get(timeout=1) == 14


def test_countdown_on_a_chain_group_or_chord_delays_what_starts_it() -> None:
    before = timezone.now()
    chained = djqueue.chain(tasks.add.s(1, 1), tasks.mul.s(3)).apply_async(countdown=60)
    grouped = djqueue.group(tasks.add.s(1, 1), tasks.add.s(2, 2)).apply_async(countdown=60)
    chorded = djqueue.chord([tasks.add.s(1, 1)], tasks.xsum.s()).apply_async(countdown=60)
    assert run_pending() == []
    first_jobs = [chained.parent, *grouped.results, *chorded.parent.results]
    for first in first_jobs:
        assert _job(first).eta >= before + datetime.timedelta(seconds=59)
    with pytest.raises(ValueError, match="countdown or eta"):
        djqueue.chain(tasks.add.s(1, 1)).apply_async(countdown=1, eta=timezone.now())


def test_a_later_step_of_a_chain_may_be_a_delayed_chain() -> None:
    inner = djqueue.chain(tasks.mul.s(2), tasks.mul.s(5)).set(countdown=60)
    result = djqueue.chain(tasks.add.s(1, 1), inner).apply_async()
    before = timezone.now()
    run_pending()
    waiting = _job(result.parent)
    assert waiting.state == states.PENDING and waiting.eta >= before + datetime.timedelta(
        seconds=59
    )


def test_the_pipe_combines_as_celery_s() -> None:
    add, xsum = tasks.add, tasks.xsum
    assert type(add.s(1, 1) | add.s(2)) is djqueue.chain
    assert type(djqueue.chain(add.s(1, 1), add.s(2)) | djqueue.group(add.s(1))) is djqueue.chain
    assert type(djqueue.group(add.s(1, 1)) | xsum.s()) is djqueue.chord
    assert type(djqueue.group(add.s(1, 1)) | djqueue.group(add.s(1))) is djqueue.chord
    piped = djqueue.chord([add.s(1, 1), add.s(2, 2)], xsum.s()) | add.s(10)
    assert type(piped) is djqueue.chord and type(piped.body) is djqueue.chain
    result = piped.apply_async()
    run_pending()
    assert result.get(timeout=1) == 16
