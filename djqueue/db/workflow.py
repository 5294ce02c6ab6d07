"""The jobs of one workflow around a job, for the console's graph (docs/canvas.md).

A workflow is rows: each job's ``workflow`` column names its parent, the steps it
releases, the jobs it cancels downstream, its callbacks, its group and chord; group rows
name a chord's header and body. Starting from one job, :func:`read` follows those names
(and the jobs started by a job, through the parent index) breadth first, a bounded
number of jobs in all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from djqueue.core import conf, ids
from djqueue.db.models import Group, Job, parent_expression

# Jobs read for one graph at most; a bigger workflow is drawn in part.
MAX_JOBS = 120


@dataclass(frozen=True)
class Member:
    """A job of the workflow: its row's names, state and place in the workflow."""

    id: uuid.UUID
    task_name: str
    state: str
    queue: str
    workflow: dict[str, Any]
    # The job that started it when it was sent from a task or is a link callback
    # (``workflow.parent`` or ``workflow.options.parent_id``).
    started_by: uuid.UUID | None


@dataclass(frozen=True)
class GroupRow:
    id: uuid.UUID
    job_ids: tuple[uuid.UUID, ...]  # the members' last jobs
    release: tuple[uuid.UUID, ...]  # a chord's body entries (empty for a group)
    chord: bool


@dataclass(frozen=True)
class Found:
    members: dict[uuid.UUID, Member]
    groups: dict[uuid.UUID, GroupRow]
    complete: bool  # False when MAX_JOBS cut the walk short


def read(job_id: uuid.UUID, limit: int = MAX_JOBS) -> Found:
    """The workflow around job ``job_id``: every job reachable through workflow names
    and parent links, up to ``limit`` jobs."""
    members: dict[uuid.UUID, Member] = {}
    groups: dict[uuid.UUID, GroupRow] = {}
    frontier: set[uuid.UUID] = {job_id}
    seen: set[uuid.UUID] = set()
    while frontier and len(members) < limit:
        batch = sorted(frontier)[: limit - len(members)]
        seen.update(batch)
        found = _members(batch)
        members.update(found)
        named = {i for m in found.values() for i in _named(m)}
        named |= _children(list(found), limit)
        group_ids = {g for m in found.values() for g in _group_ids(m)} - set(groups)
        for row in _groups(group_ids):
            groups[row.id] = row
            named.update(row.job_ids + row.release)
        frontier = (frontier | named) - seen
    return Found(members, groups, complete=not frontier)


def _jobs() -> Any:
    return Job.objects.using(conf.database())


def _members(job_ids: list[uuid.UUID]) -> dict[uuid.UUID, Member]:
    rows = (
        _jobs()
        .filter(pk__in=job_ids)
        .annotate(started_by=parent_expression())
        .values_list("id", "task_name", "state", "queue", "workflow", "started_by")
    )
    return {
        row[0]: Member(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4] if isinstance(row[4], dict) else {},
            parse_id(row[5]),
        )
        for row in rows
    }


def _children(parents: list[uuid.UUID], limit: int) -> set[uuid.UUID]:
    """Jobs started by ``parents`` (sent from their tasks, link callbacks), through the
    parent index."""
    if not parents:
        return set()
    rows = (
        _jobs()
        .filter(workflow__isnull=False)
        .annotate(started_by=parent_expression())
        .filter(started_by__in=[str(p) for p in parents])
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return set(rows)


def _groups(group_ids: Iterable[uuid.UUID]) -> list[GroupRow]:
    wanted = sorted(group_ids)
    if not wanted:
        return []
    rows = Group.objects.using(conf.database()).filter(pk__in=wanted)
    return [
        GroupRow(
            row.id,
            _ids(row.job_ids),
            _ids(step.get("id") for step in row.release or [] if isinstance(step, dict)),
            row.remaining is not None,
        )
        for row in rows
    ]


def _named(member: Member) -> set[uuid.UUID]:
    """Jobs ``member``'s row names: parent, next steps, cancelled downstream, callbacks."""
    flow = member.workflow
    names: list[Any] = [flow.get("parent"), member.started_by]
    for key in ("next", "link", "link_error"):
        names += [step.get("id") for step in _list(flow.get(key)) if isinstance(step, dict)]
    names += _list(flow.get("cancel"))
    return set(_ids(names))


def _group_ids(member: Member) -> set[uuid.UUID]:
    flow = member.workflow
    return set(_ids(flow.get(key) for key in ("group", "chord", "body_of")))


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _ids(values: Iterable[object]) -> tuple[uuid.UUID, ...]:
    return tuple(found for value in values if (found := parse_id(value)) is not None)


def parse_id(value: object) -> uuid.UUID | None:
    """A job or group id named in a row; None for anything else."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return ids.parse(value)
    except ValueError:
        return None
