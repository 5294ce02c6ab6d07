"""Workflows drawn on the job page: chains, groups, chords and jobs sent from tasks,
found from the rows that were sent, laid out in columns, each job a link."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

import djqueue
from djqueue.core import states
from djqueue.core.records import Outcome
from djqueue.db import broker, workflow
from djqueue.ops import workflow_graph
from tests.factories import JobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def uid(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))


def columns(graph: workflow_graph.Graph) -> dict[uuid.UUID, int]:
    return {
        node.id: node.x // (workflow_graph.NODE_WIDTH + workflow_graph.GAP_X)
        for node in graph.nodes
    }


def test_a_chain_in_columns_from_any_of_its_steps() -> None:
    last = djqueue.chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.add.s(4)).apply_async()
    middle = last.parent
    first = middle.parent
    graph = workflow_graph.around(uid(middle.id))
    assert graph is not None
    assert columns(graph) == {uid(first.id): 0, uid(middle.id): 1, uid(last.id): 2}
    assert [edge.kind for edge in graph.edges] == ["next", "next"]
    [current] = [node for node in graph.nodes if node.current]
    assert current.id == uid(middle.id)
    assert graph.complete


def test_a_chord_frames_its_header_and_points_it_at_the_body() -> None:
    header = [tasks.add.s(1, 1), tasks.add.s(2, 2), tasks.add.s(3, 3)]
    body = djqueue.chord(header, tasks.xsum.s()).apply_async()
    graph = workflow_graph.around(uid(body.id))
    assert graph is not None
    placed = columns(graph)
    assert len(placed) == 4 and placed[uid(body.id)] == 1
    assert sorted(placed.values()) == [0, 0, 0, 1]
    assert [edge.kind for edge in graph.edges] == ["chord"] * 3
    assert [frame.label for frame in graph.frames] == ["chord header"]
    assert {node.state for node in graph.nodes} == {states.PENDING}


def test_a_group_from_one_of_its_members() -> None:
    result = djqueue.group(tasks.add.s(n, n) for n in range(3)).apply_async()
    graph = workflow_graph.around(uid(result.results[1].id))
    assert graph is not None
    assert len(graph.nodes) == 3 and graph.edges == ()
    assert [frame.label for frame in graph.frames] == ["group"]


def test_states_follow_the_rows() -> None:
    last = djqueue.chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async()
    [claimed] = broker.claim(["default"], 10, "w", 30.0, limited=False)
    broker.finish(
        [Outcome(claimed.id, claimed.attempt, claimed.task_name, states.SUCCESS, "3", worker="w")]
    )
    graph = workflow_graph.around(uid(last.id))
    assert graph is not None
    assert {node.id: node.state for node in graph.nodes} == {
        uid(last.parent.id): states.SUCCESS,
        uid(last.id): states.PENDING,
    }


def test_jobs_sent_from_a_task_hang_from_it() -> None:
    parent = JobFactory(state=states.SUCCESS)
    children = [JobFactory(workflow={"options": {"parent_id": str(parent.id)}}) for _ in range(2)]
    graph = workflow_graph.around(parent.id)
    assert graph is not None
    assert columns(graph) == {parent.id: 0, children[0].id: 1, children[1].id: 1}
    assert [edge.kind for edge in graph.edges] == ["sent", "sent"]


def test_a_plain_job_has_no_graph() -> None:
    assert workflow_graph.around(JobFactory().id) is None


def test_a_big_workflow_is_read_in_part() -> None:
    last = djqueue.chain(
        *[tasks.add.s(n, n) if n == 0 else tasks.add.s(n) for n in range(8)]
    ).apply_async()
    found = workflow.read(uid(last.id), limit=4)
    assert len(found.members) == 4
    assert not found.complete


def test_the_page_draws_the_graph_with_a_link_per_job(admin_client: Client) -> None:
    last = djqueue.chain(tasks.add.s(1, 2), tasks.echo.s()).apply_async()
    html = admin_client.get(reverse("admin:djqueue_job_change", args=[last.id])).content.decode()
    graph = html[html.index('id="djq-workflow"') :]
    for job_id in (last.id, last.parent.id):
        assert f'href="{reverse("admin:djqueue_job_change", args=[job_id])}"' in graph
    assert "djq-node-current" in graph
    assert ">add<" in graph and ">echo<" in graph


def test_a_plain_job_page_has_no_workflow_section(admin_client: Client) -> None:
    job = JobFactory()
    html = admin_client.get(reverse("admin:djqueue_job_change", args=[job.id])).content.decode()
    assert 'id="djq-workflow"' not in html


def test_task_names_from_rows_are_escaped(admin_client: Client) -> None:
    parent = JobFactory(task_name="x.<script>alert(1)</script>", state=states.SUCCESS)
    JobFactory(workflow={"options": {"parent_id": str(parent.id)}})
    html = admin_client.get(reverse("admin:djqueue_job_change", args=[parent.id])).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;" in html
