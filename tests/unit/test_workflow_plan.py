"""Planning a workflow into records: the jobs' continuations and the group rows that the
data layer inserts, and the JSON they are stored as (no database needed)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid

import pytest

from djqueue.client import planning
from djqueue.client.canvas import Canvas, chain, chord, group
from djqueue.core.records import Callback, Continuation, GroupRow, NewJob, Release, Workflow
from tests.testapp import tasks


def plan(node: Canvas) -> Workflow:
    made = planning.Plan()
    made.add(node, waiting=False, defaults={})
    return made.workflow()


def continuation(job: NewJob) -> Continuation:
    assert job.workflow is not None
    return job.workflow


def test_a_chain_releases_each_step_from_the_one_before() -> None:
    first, second, third = plan(chain(tasks.add.s(1, 1), tasks.add.s(2), tasks.mul.si(3, 4))).jobs
    assert (first.waiting, second.waiting, third.waiting) == (False, True, True)
    assert continuation(first).next == (Release(second.id, pass_result=True),)
    # An immutable step is released without the result before it.
    assert continuation(second).next == (Release(third.id, pass_result=False),)
    assert continuation(second).parent == first.id
    # A failure ends every step after it.
    assert continuation(first).cancel == (second.id, third.id)
    assert third.workflow is not None and third.workflow.next == ()


def test_a_chord_is_a_group_row_counting_its_header_and_releasing_its_body() -> None:
    workflow = plan(chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.xsum.s()))
    [row] = workflow.groups
    first, second, body = workflow.jobs
    assert row == GroupRow(
        row.id,
        (first.id, second.id),
        remaining=2,
        release=(Release(body.id, pass_result=True),),
        body_id=body.id,
    )
    assert [continuation(job).slot for job in (first, second)] == [0, 1]
    assert {continuation(job).chord for job in (first, second)} == {row.id}
    assert continuation(body).body_of == row.id
    assert body.waiting and not first.waiting


def test_a_group_row_has_no_counter() -> None:
    workflow = plan(group(tasks.add.s(1, 1), tasks.add.s(2, 2)))
    [row] = workflow.groups
    assert (row.remaining, row.release, row.body_id) == (None, (), None)
    assert row.data()["release"] is None  # stored as NULL: nothing to release
    assert {continuation(job).group for job in workflow.jobs} == {row.id}


def test_callbacks_are_records_with_their_ids_fixed_when_sent() -> None:
    sig = tasks.add.s(1, 1)
    sig.link(tasks.show.s())
    sig.link_error(tasks.on_chain_error.s())
    [job] = plan(sig).jobs
    [link] = continuation(job).link
    [errback] = continuation(job).link_error
    assert isinstance(link, Callback) and link.task_name == tasks.show.name
    assert (link.pass_result, json.loads(link.args)) == (True, [])
    assert (errback.task_name, errback.takes_request) == (tasks.on_chain_error.name, False)
    assert link.id != errback.id


def test_an_errback_taking_the_request_is_stored_with_its_own_arguments_only() -> None:
    sig = tasks.add.s(1, 1)
    sig.link_error(tasks.errback_with_request_and_tag.s("tag"))
    [job] = plan(sig).jobs
    [errback] = continuation(job).link_error
    # Checked with room for (request, exc, traceback); the failure puts them first.
    assert (errback.takes_request, json.loads(errback.args)) == (True, ["tag"])


def test_a_single_task_without_callbacks_carries_no_continuation() -> None:
    [job] = plan(tasks.add.s(1, 1)).jobs
    assert job.workflow is None


def test_a_steps_own_options_travel_with_its_place() -> None:
    first, _ = plan(chain(tasks.add.s(1, 1).set(headers={"a": 1}), tasks.add.s(2))).jobs
    made = continuation(first)
    assert made.next and json.loads(made.options or "") == {"headers": {"a": 1}}


def test_records_are_frozen() -> None:
    release = Release(uuid.uuid4(), pass_result=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        release.pass_result = False  # type: ignore[misc]


def test_a_continuation_is_stored_with_the_keys_the_follow_up_statement_reads() -> None:
    job_id, later, group_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    eta = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    callback = Callback(
        job_id, "t", "q", 1, "[1]", "{}", 3, None, 5.0, pass_result=False, takes_request=True
    )
    made = Continuation(
        next=(Release(later, pass_result=True, countdown=2.0, eta=eta),),
        link_error=(callback,),
        cancel=(later,),
        group=group_id,
        chord=group_id,
        slot=0,
        options='{"shadow": "s"}',
    )
    assert json.loads(made.encode()) == {
        "next": [{"id": str(later), "pass": True, "countdown": 2.0, "eta": eta.isoformat()}],
        "link_error": [
            {
                "id": str(job_id),
                "task_name": "t",
                "queue": "q",
                "priority": 1,
                "args": [1],
                "kwargs": {},
                "max_attempts": 3,
                "countdown": None,
                "expires_in": 5.0,
                "pass": False,
                "style": "request",
            }
        ],
        "cancel": [str(later)],
        "group": str(group_id),
        "chord": str(group_id),
        "slot": 0,
        "options": {"shadow": "s"},
    }


def test_a_continuation_of_options_only_is_stored_as_they_are() -> None:
    assert Continuation(options='{"root_id": "x"}').encode() == '{"options":{"root_id": "x"}}'
