"""A workflow drawn as a graph for the job page: its jobs as boxes in columns (each job
right of the jobs it waits for), arrows for what releases or starts what, groups and
chord headers framed (docs/monitoring.md#workflows).

The layout is computed here, on the server, and drawn as SVG by a template: a layered
drawing (longest path from the first jobs, then each column ordered by where its
predecessors stand) is all a chain, group or chord needs, and a page with it loads no
script.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.urls import reverse

from djqueue.core import ids
from djqueue.db import workflow
from djqueue.ops.admin_base import STATE_COLOURS

NODE_WIDTH = 200
NODE_HEIGHT = 48
GAP_X = 64
GAP_Y = 18
MARGIN = 12
# Edge kinds, with how they are drawn (a CSS class each).
NEXT, CHORD, LINK, ERRBACK, SENT = "next", "chord", "link", "errback", "sent"
TASK_CHARACTERS = 26


@dataclass(frozen=True)
class Node:
    id: uuid.UUID
    short_id: str
    task: str  # the task's last dotted part, cut to fit
    task_name: str
    state: str
    colour: str
    url: str
    current: bool
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    kind: str
    path: str  # SVG path data


@dataclass(frozen=True)
class Frame:
    label: str  # "group" or "chord header"
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    frames: tuple[Frame, ...]
    width: int
    height: int
    complete: bool
    kinds: tuple[str, ...]  # edge kinds present, for the legend

    @property
    def node_width(self) -> int:
        return NODE_WIDTH

    @property
    def node_height(self) -> int:
        return NODE_HEIGHT


def around(job_id: uuid.UUID) -> Graph | None:
    """The graph of the workflow job ``job_id`` belongs to; None for a job alone."""
    found = workflow.read(job_id)
    if len(found.members) < 2:
        return None
    return draw(found, job_id)


def edges_of(found: workflow.Found) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(from, to, kind) between jobs of ``found``, one per pair."""
    members = found.members
    made: dict[tuple[uuid.UUID, uuid.UUID], str] = {}

    def add(source: uuid.UUID | None, target: uuid.UUID | None, kind: str) -> None:
        if source in members and target in members and source != target:
            assert source is not None and target is not None
            made.setdefault((source, target), kind)

    for member in members.values():
        flow = member.workflow
        for key, kind in (("next", NEXT), ("link", LINK), ("link_error", ERRBACK)):
            for step in flow.get(key) or []:
                if isinstance(step, dict):
                    add(member.id, workflow.parse_id(step.get("id")), kind)
    for group in found.groups.values():
        for exit_id in group.job_ids:
            for body in group.release:
                add(exit_id, body, CHORD)
    for member in members.values():
        add(member.started_by, member.id, SENT)
    return [(source, target, kind) for (source, target), kind in made.items()]


def draw(found: workflow.Found, current: uuid.UUID) -> Graph:
    edges = edges_of(found)
    columns = _columns(list(found.members), edges)
    places: dict[uuid.UUID, tuple[int, int]] = {}
    for column, job_ids in enumerate(columns):
        for row, job_id in enumerate(job_ids):
            places[job_id] = (
                MARGIN + column * (NODE_WIDTH + GAP_X),
                MARGIN + row * (NODE_HEIGHT + GAP_Y),
            )
    nodes = tuple(_node(found.members[i], places[i], current) for i in places)
    tallest = max(len(column) for column in columns)
    return Graph(
        nodes=nodes,
        edges=tuple(Edge(kind, _path(places[s], places[t])) for s, t, kind in edges),
        frames=tuple(_frames(found, places)),
        width=2 * MARGIN + len(columns) * (NODE_WIDTH + GAP_X) - GAP_X,
        height=2 * MARGIN + tallest * (NODE_HEIGHT + GAP_Y) - GAP_Y + 14,
        complete=found.complete,
        kinds=tuple(sorted({kind for _, _, kind in edges})),
    )


def _columns(
    job_ids: list[uuid.UUID], edges: list[tuple[uuid.UUID, uuid.UUID, str]]
) -> list[list[uuid.UUID]]:
    """Jobs by column: each one column right of the furthest job it comes after."""
    before: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    after: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for source, target, _ in edges:
        before[target].append(source)
        after[source].append(target)
    waiting = {job_id: len(before[job_id]) for job_id in job_ids}
    ready = sorted(job_id for job_id, n in waiting.items() if n == 0)
    column: dict[uuid.UUID, int] = {}
    while ready:
        job_id = ready.pop(0)
        column[job_id] = max((column[p] + 1 for p in before[job_id] if p in column), default=0)
        for target in after[job_id]:
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    for job_id in job_ids:  # in a cycle (rows edited by hand): put first
        column.setdefault(job_id, 0)
    columns: list[list[uuid.UUID]] = [[] for _ in range(max(column.values()) + 1)]
    for job_id in sorted(job_ids):  # ids grow with time: the order they were sent
        columns[column[job_id]].append(job_id)
    # Each column in the order of where its jobs' predecessors stand.
    rank: dict[uuid.UUID, float] = {}
    for jobs in columns:
        for job_id in jobs:
            ranks = [rank[p] for p in before[job_id] if p in rank]
            rank[job_id] = sum(ranks) / len(ranks) if ranks else float(jobs.index(job_id))
        jobs.sort(key=lambda j: (rank[j], j))
        for index, job_id in enumerate(jobs):
            rank[job_id] = float(index)
    return columns


def _node(member: workflow.Member, place: tuple[int, int], current: uuid.UUID) -> Node:
    task = member.task_name.rsplit(".", 1)[-1]
    if len(task) > TASK_CHARACTERS:
        task = task[: TASK_CHARACTERS - 1] + "…"
    return Node(
        id=member.id,
        short_id=ids.short(member.id),
        task=task,
        task_name=member.task_name,
        state=member.state,
        colour=STATE_COLOURS.get(member.state, "#000000"),
        url=reverse("admin:djqueue_job_change", args=[member.id]),
        current=member.id == current,
        x=place[0],
        y=place[1],
    )


def _path(source: tuple[int, int], target: tuple[int, int]) -> str:
    """A curve from the right side of one box to the left side of another."""
    x1, y1 = source[0] + NODE_WIDTH, source[1] + NODE_HEIGHT // 2
    x2, y2 = target[0], target[1] + NODE_HEIGHT // 2
    if x2 <= x1:  # same column (a job sent by one beside it): go round below
        return f"M{x1},{y1} C{x1 + 30},{y1} {x2 - 30},{y2} {x2},{y2}"
    middle = (x1 + x2) // 2
    return f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"


def _frames(found: workflow.Found, places: dict[uuid.UUID, tuple[int, int]]) -> list[Frame]:
    frames = []
    for group in found.groups.values():
        key = "chord" if group.chord else "group"
        inside = [
            places[m.id]
            for m in found.members.values()
            if str(group.id) == str(m.workflow.get(key)) and m.id in places
        ]
        if len(inside) < 2:
            continue
        left, top = min(x for x, _ in inside) - 6, min(y for _, y in inside) - 6
        right = max(x for x, _ in inside) + NODE_WIDTH + 6
        bottom = max(y for _, y in inside) + NODE_HEIGHT + 14
        label = "chord header" if group.chord else "group"
        frames.append(Frame(label, left, top, right - left, bottom - top))
    return frames
