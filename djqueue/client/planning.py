"""Planning a workflow: the jobs it is sent as, each with its continuation, and its groups.

A workflow is sent as rows: every job it will run exists from the start (the ones that
wait for another have an eta in the year 9999), each carrying its continuation as JSON in
``Job.workflow``: the waiting jobs its success releases (``next``), callbacks to insert
(``link``, ``link_error``), the waiting jobs its failure revokes (``cancel``) and the chord
it counts toward. The statement that records a job's outcome acts on that continuation
(``sql.parts.FOLLOW_UP``), so the workflow lives in PostgreSQL and survives any worker.

The planner reads the building blocks of :mod:`djqueue.client.canvas` (which imports it
to send them) by their ``subtask_type``, so that it needs none of their classes.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import inspect
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from djqueue.core import ids
from djqueue.core.options import JOB_OPTIONS
from djqueue.core.records import (
    Callback,
    Continuation,
    GroupRow,
    NewJob,
    Release,
    Workflow,
)

if TYPE_CHECKING:
    from djqueue.client.canvas import Canvas, Signature, chain, chord, group

# Options a chain, group or chord passes down to its tasks (which may override them).
DEFAULTS = ("queue", "priority")


@dataclass
class _Part:
    """What planning one node gave: the jobs that start it, those whose results are its
    result, all its jobs, and its result handle."""

    entries: list[uuid.UUID]
    exits: list[uuid.UUID]
    all: list[uuid.UUID]
    result: Any


@dataclass
class _Place:
    """A job's continuation while the plan is made (see :class:`Continuation`)."""

    next: list[Release] = field(default_factory=list)
    link: list[Callback] = field(default_factory=list)
    link_error: list[Callback] = field(default_factory=list)
    cancel: list[uuid.UUID] = field(default_factory=list)
    parent: uuid.UUID | None = None
    group: uuid.UUID | None = None
    chord: uuid.UUID | None = None
    slot: int | None = None
    body_of: uuid.UUID | None = None

    def record(self, options: str | None) -> Continuation | None:
        """The continuation, with the call's own ``options``; None if it holds nothing."""
        made = Continuation(
            next=tuple(self.next),
            link=tuple(self.link),
            link_error=tuple(self.link_error),
            cancel=tuple(self.cancel),
            parent=self.parent,
            group=self.group,
            chord=self.chord,
            slot=self.slot,
            body_of=self.body_of,
            options=options,
        )
        return None if made == Continuation() else made


@dataclass
class _Job:
    signature: Signature
    waiting: bool
    defaults: dict[str, Any]
    place: _Place = field(default_factory=_Place)
    # countdown or eta given to a chain, group or chord this job starts (they win over
    # the task's own, as options given when sending do).
    timing: dict[str, Any] = field(default_factory=dict)


class Plan:
    """Turns a workflow into jobs with continuations, and group rows."""

    def __init__(self) -> None:
        self.planned: dict[uuid.UUID, _Job] = {}
        self.groups: list[GroupRow] = []
        self.errback_ids: dict[int, uuid.UUID] = {}  # id(signature) -> its job id
        # What each planned node was made of (keyed by id(node)), for its callbacks: a
        # signature's job, a chain's steps, a group's members (nested groups unrolled),
        # a chord's body.
        self.jobs_of: dict[int, uuid.UUID] = {}
        self.steps_of: dict[int, list[Canvas]] = {}
        self.members_of: dict[int, list[tuple[Canvas, _Part]]] = {}
        self.body_of: dict[int, Canvas] = {}

    def add(self, node: Canvas, waiting: bool, defaults: dict[str, Any]) -> _Part:
        """Plan ``node`` (and what is inside it); return its part."""
        defaults = {**defaults, **{k: v for k, v in node.options.items() if k in DEFAULTS}}
        if node.subtask_type is None:
            part = self._signature(node, waiting, defaults)
        elif node.subtask_type == "chain":
            part = self._chain(node, waiting, defaults)
        elif node.subtask_type == "group":
            part = self._group(node, waiting, defaults)
        else:
            part = self._chord(node, waiting, defaults)
        timing = {k: v for k in ("countdown", "eta") if (v := node.options.get(k)) is not None}
        if timing and node.subtask_type is not None:
            for entry in part.entries:
                self.planned[entry].timing = timing
        self._callbacks(node, part)
        return part

    def _signature(self, sig: Signature, waiting: bool, defaults: dict[str, Any]) -> _Part:
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client.result import AsyncResult

        job_id = ids.parse(sig.options["task_id"]) if "task_id" in sig.options else ids.new_id()
        if job_id in self.planned:
            raise ValueError(f"task_id {job_id} is used twice in one workflow")
        self.planned[job_id] = _Job(sig, waiting, defaults)
        self.jobs_of[id(sig)] = job_id
        return _Part([job_id], [job_id], [job_id], AsyncResult(job_id))

    def _chain(self, node: chain, waiting: bool, defaults: dict[str, Any]) -> _Part:
        parts: list[_Part] = []
        steps = node._steps()
        self.steps_of[id(node)] = steps
        for step in steps:
            parts.append(self.add(step, waiting=waiting or bool(parts), defaults=defaults))
        for index, (before, after) in enumerate(itertools.pairwise(parts)):
            downstream = [job_id for later in parts[index + 1 :] for job_id in later.all]
            for job_id in before.all:
                self.planned[job_id].place.cancel.extend(downstream)
            for exit_id in before.exits:
                self.planned[exit_id].place.next.extend(
                    self._release(entry) for entry in after.entries
                )
            for entry in after.entries:
                self.planned[entry].place.parent = before.exits[-1]
            root(after.result).parent = before.result
        last = parts[-1]
        return _Part(parts[0].entries, last.exits, [i for p in parts for i in p.all], last.result)

    def _members(
        self, node: group, waiting: bool, defaults: dict[str, Any]
    ) -> tuple[uuid.UUID, list[_Part]]:
        group_id = ids.new_id()
        made: list[tuple[Canvas, _Part]] = []
        for task in node.tasks:
            part = self.add(task, waiting, defaults)
            # As Celery does, a group in a group is unrolled: its members are this one's.
            made.extend(
                self.members_of[id(task)] if task.subtask_type == "group" else [(task, part)]
            )
        self.members_of[id(node)] = made
        members = [part for _, part in made]
        for member in members:
            for job_id in member.all:
                self.planned[job_id].place.group = group_id
        return group_id, members

    def _group(self, node: group, waiting: bool, defaults: dict[str, Any]) -> _Part:
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client.result_set import GroupResult

        group_id, members = self._members(node, waiting, defaults)
        exits = [member.exits[0] for member in members]
        self.groups.append(GroupRow(group_id, tuple(exits)))
        return _Part(
            [i for m in members for i in m.entries],
            exits,
            [i for m in members for i in m.all],
            GroupResult(group_id, [m.result for m in members]),
        )

    def _chord(self, node: chord, waiting: bool, defaults: dict[str, Any]) -> _Part:
        # Imported here: results read the job model, which Django defines only once its app
        # registry is ready, and a task may be declared before that.
        from djqueue.client.result_set import GroupResult

        assert node.body is not None  # checked by chord.apply_async
        if not node.header.tasks:
            # Nothing to wait for: the body runs at once, with an empty list of results.
            self.body_of[id(node)] = node.body._partial(([],), None)
            return self.add(self.body_of[id(node)], waiting, defaults)
        group_id, members = self._members(node.header, waiting, defaults)
        self.body_of[id(node)] = node.body
        body = self.add(node.body, waiting=True, defaults=defaults)
        exits = [member.exits[0] for member in members]
        after_body = [job_id for job_id in body.all if job_id not in body.entries]
        for slot, member in enumerate(members):
            self.planned[member.exits[0]].place.slot = slot
            for job_id in member.all:
                place = self.planned[job_id].place
                place.chord = group_id
                place.cancel.extend(after_body)
        for entry in body.entries:
            self.planned[entry].place.body_of = group_id
        self.groups.append(
            GroupRow(
                group_id,
                tuple(exits),
                remaining=len(members),
                release=tuple(self._release(entry) for entry in body.entries),
                body_id=body.exits[-1],
            )
        )
        header = GroupResult(group_id, [m.result for m in members])
        root(body.result).parent = header
        return _Part(
            [i for m in members for i in m.entries],
            body.exits,
            [i for m in members for i in m.all] + body.all,
            body.result,
        )

    def _release(self, job_id: uuid.UUID) -> Release:
        """How the job before releases ``job_id``: pass its result or not, and when."""
        planned = self.planned[job_id]
        timing = planned.timing or planned.signature.options
        countdown = timing.get("countdown")
        eta = timing.get("eta")
        return Release(
            job_id,
            pass_result=not planned.signature.immutable,
            countdown=None if countdown is None else _seconds(countdown),
            eta=None if eta is None else _moment(eta),
        )

    def _callbacks(self, node: Canvas, part: _Part) -> None:
        for callback in node.options.get("link", []):
            self._link(node, callback)
        for errback in node.options.get("link_error", []):
            self._link_error(node, errback, self.errback_ids.setdefault(id(errback), ids.new_id()))

    def _link(self, node: Canvas, callback: Signature) -> None:
        """Put ``callback`` where Celery puts a node's link: on a task, its job; on a chain,
        its last step; on a chord, its body; on a group, its first member (which cannot
        pass on the group's results, so the callback is made immutable)."""
        if node.subtask_type is None:
            made = _callback(callback, ids.new_id())
            self.planned[self.jobs_of[id(node)]].place.link.append(made)
        elif node.subtask_type == "chain":
            self._link(self.steps_of[id(node)][-1], callback)
        elif node.subtask_type == "group":
            first, _ = self.members_of[id(node)][0]
            fixed = callback.clone()
            fixed.immutable = True
            self._link(first, fixed)
        else:
            self._link(self.body_of[id(node)], callback)

    def _link_error(self, node: Canvas, errback: Signature, errback_id: uuid.UUID) -> None:
        """Put ``errback`` where Celery puts a node's link_error: on a task, its job; on a
        chain, each step; on a chord, its body (a header task that fails ends the body,
        which then calls it); on a group, each member, as a copy of its own (so it runs
        once for each member that fails). ``errback_id`` is its job's id: one errback
        shared by several jobs is inserted once, whichever fails (ON CONFLICT)."""
        if node.subtask_type is None:
            made = _callback(errback, errback_id, errback=True)
            known = self.planned[self.jobs_of[id(node)]].place.link_error
            if made.id not in {item.id for item in known}:
                known.append(made)
        elif node.subtask_type == "chain":
            for step in self.steps_of[id(node)]:
                self._link_error(step, errback, errback_id)
        elif node.subtask_type == "group":
            for member, _ in self.members_of[id(node)]:
                self._link_error(member, errback, ids.new_id())
        else:
            self._link_error(self.body_of[id(node)], errback, errback_id)

    def jobs(self) -> list[NewJob]:
        """Every planned job, ready to insert."""
        return [self._job(job_id, planned) for job_id, planned in self.planned.items()]

    def workflow(self) -> Workflow:
        """The workflow to insert: every planned job, and the group rows."""
        return Workflow(tuple(self.jobs()), tuple(self.groups))

    def _job(self, job_id: uuid.UUID, planned: _Job) -> NewJob:
        sig = planned.signature
        options = {k: v for k, v in {**planned.defaults, **sig.options}.items() if k in JOB_OPTIONS}
        options.pop("task_id", None)
        if planned.timing:
            options.pop("countdown", None)
            options.pop("eta", None)
            options.update(planned.timing)
        if planned.waiting:
            # Its release sets when it runs (see _release).
            options.pop("countdown", None)
            options.pop("eta", None)
        # A waiting step gets the result before it as its first argument when released.
        partial = planned.waiting and not sig.immutable
        job = sig.task.prepare(sig.args, sig.kwargs, task_id=job_id, partial=partial, **options)
        if job.unique_key is not None:
            raise ValueError(
                f"{sig.task.name} has a unique key; such tasks cannot be part of a workflow yet"
            )
        # The call's own options, if any (see Task.prepare), go with its place.
        carried = None if job.workflow is None else job.workflow.options
        continuation = planned.place.record(carried)
        return dataclasses.replace(job, workflow=continuation, waiting=planned.waiting)


def _callback(sig: Signature, job_id: uuid.UUID, errback: bool = False) -> Callback:
    """``sig`` as a callback that the finish statement inserts (``sql.parts.FOLLOW_UP``)."""
    if sig.options.get("link") or sig.options.get("link_error"):
        raise TypeError(f"a callback cannot have callbacks of its own: {sig!r}")
    options = {k: v for k, v in sig.options.items() if k in ("queue", "priority", "expires")}
    style = errback and takes_request(sig)
    # An errback that takes (request, exc, traceback) gets them first, whatever else.
    given = (None, None, None, *sig.args) if style else sig.args
    job = sig.task.prepare(
        given, sig.kwargs, task_id=job_id, partial=not (sig.immutable or style), **options
    )
    if job.limited:
        raise ValueError(f"{sig.task.name} has limits; it cannot be a callback yet")
    countdown = sig.options.get("countdown")
    return Callback(
        id=job_id,
        task_name=job.task_name,
        queue=job.queue,
        priority=job.priority,
        # Checked with room for the request, error and traceback; stored without them.
        args=json.dumps(json.loads(job.args)[3:]) if style else job.args,
        kwargs=job.kwargs,
        max_attempts=job.max_attempts,
        countdown=None if countdown is None else _seconds(countdown),
        expires_in=job.expires_in,
        pass_result=not sig.immutable,
        takes_request=style,
    )


def takes_request(errback: Signature) -> bool:
    """Whether ``errback`` is called as Celery calls new-style errbacks, with the failed
    job's ``(request, exc, traceback)``: its function takes more than one positional
    argument besides those the signature gives it (or ``*args``). As in Celery, a task
    with ``bind=True`` is always called the old way, with the failed job's id."""
    task = errback.task
    function = getattr(task, "fn", None)
    if task.bind or function is None:
        return False
    header: Any = function
    if not errback.immutable and (errback.args or errback.kwargs):
        header = functools.partial(function, *errback.args, **errback.kwargs)
    try:
        spec = inspect.getfullargspec(header)
    except TypeError:
        return False
    return bool(spec.varargs) or len(spec.args) > 1


def root(result: Any) -> Any:
    """The first result up ``result``'s ``.parent`` links."""
    while getattr(result, "parent", None) is not None:
        result = result.parent
    return result


def _seconds(value: float | datetime.timedelta) -> float:
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def _moment(value: datetime.datetime) -> datetime.datetime:
    from django.utils import timezone

    return timezone.make_aware(value) if timezone.is_naive(value) else value
