"""Why a job waits: each reason of the job page produced by real rows (sent, claimed,
paused, limited, chained) and read back through ``djqueue.ops.waiting``."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils import timezone

import djqueue
from djqueue.core import states
from djqueue.core.records import ClaimedJob, Outcome
from djqueue.db import broker, queue_gates, waiting
from djqueue.ops import access
from djqueue.ops import waiting as why
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

EVERYTHING = access.Visible(jobs=True, workers=True, queues=True, periodic=True)


@pytest.fixture(autouse=True)
def live_worker() -> None:
    """A live worker serving the default queue (so that "no live worker" is not among
    the reasons unless a test wants it)."""
    broker.register_worker("host.1.abc", "host", 1, "threads", 4, ["default"])


def reasons(job_id: Any) -> list[why.Reason]:
    return why.of(uuid.UUID(str(job_id)), EVERYTHING)


def kinds(job_id: Any) -> list[str]:
    return [reason.kind for reason in reasons(job_id)]


def claim(limit: int = 10, worker: str = "host.1.abc") -> list[ClaimedJob]:
    return broker.claim(["default"], limit, worker, 30.0, limited=True)


def test_a_job_due_later_is_not_due_until_its_eta() -> None:
    result = tasks.add.apply_async((1, 2), countdown=3600)
    [reason] = reasons(result.id)
    assert reason.kind == "not-due"
    assert "not due until" in reason.text
    assert "from now" in reason.text


def test_a_due_job_stands_in_line_behind_the_jobs_ahead() -> None:
    first = tasks.add.delay(1, 1)
    high = tasks.add.apply_async((2, 2), priority=5)
    last = tasks.add.delay(3, 3)
    [reason] = reasons(last.id)
    assert reason.kind == "queued"
    assert "2 job(s) ahead" in reason.text
    assert "first in line" in reasons(high.id)[0].text
    assert "1 job ahead" in reasons(first.id)[0].text


def test_a_job_in_a_paused_queue() -> None:
    broker.set_paused("mail", True)
    broker.register_worker("host.2.abc", "host", 2, "threads", 4, ["mail"])
    result = tasks.add.apply_async((1, 2), queue="mail")
    assert kinds(result.id) == ["paused"]
    [reason] = reasons(result.id)
    assert "'mail' is paused" in reason.text
    assert reason.links[0].url == reverse("admin:djqueue_queue_changelist")


def test_a_job_in_a_queue_no_live_worker_serves() -> None:
    result = tasks.add.apply_async((1, 2), queue="nobody")
    [reason] = reasons(result.id)
    assert reason.kind == "no-worker"
    assert "runworker -Q nobody" in reason.text
    assert "1 live worker(s) serve other queues" in reason.text


def test_a_stopped_or_silent_worker_does_not_serve() -> None:
    broker.worker_stopped("host.1.abc", 0)
    result = tasks.add.delay(1, 2)
    assert kinds(result.id) == ["no-worker"]


def test_a_rate_limit_says_how_many_started_when_the_next_may_and_how_many_are_ahead() -> None:
    sent = [tasks.twice_a_minute.delay(n) for n in range(4)]
    assert len(claim()) == 2
    [reason] = reasons(sent[3].id)
    assert reason.kind == "rate-limit"
    assert "2 start(s) per 1 min" in reason.text
    assert "2 started in the last period" in reason.text
    assert "the next start is allowed at" in reason.text
    assert "1 job under this limit ahead of it" in reason.text


def test_a_concurrency_limit_says_how_many_run_and_how_many_are_ahead() -> None:
    sent = [tasks.per_account.delay(7) for _ in range(4)]
    assert len(claim()) == 2
    [reason] = reasons(sent[3].id)
    assert reason.kind == "concurrency-limit"
    assert "key 'tests.testapp.tasks.per_account:7' (2 at once)" in reason.text
    assert "2 running now; 1 job with this key ahead" in reason.text


@pytest.fixture
def forget_queue_limits() -> Any:
    yield
    queue_gates.update([])


@pytest.mark.usefixtures("forget_queue_limits")
def test_a_queues_concurrency_limit_says_how_many_it_holds_and_how_many_are_ahead() -> None:
    broker.set_queue_limits("default", 2, None)
    broker.paused_queues()  # reading the queues takes note of the limits, as a worker does
    sent = [tasks.add.delay(n, n) for n in range(5)]
    assert len(claim()) == 2
    [reason] = reasons(sent[4].id)
    assert reason.kind == "queue-limit"
    assert "The limits of its queue 'default' hold it" in reason.text
    assert "2 of its jobs held by workers, 2 at once" in reason.text
    assert "2 job(s) ahead of it in the queue" in reason.text
    assert [link.label for link in reason.links] == ["jobs of this queue held", "queues"]


@pytest.mark.usefixtures("forget_queue_limits")
def test_a_queues_rate_limit_says_when_the_next_start_is_allowed() -> None:
    broker.set_queue_limits("default", None, (2, 60.0))
    broker.paused_queues()
    sent = [tasks.add.delay(n, n) for n in range(3)]
    assert len(claim()) == 2
    [reason] = reasons(sent[2].id)
    assert reason.kind == "queue-limit"
    assert "2 started in the last 1 min, 2 allowed (the next start is allowed at" in reason.text
    assert "first" not in reason.text


def test_a_queue_limit_with_room_left_holds_nothing() -> None:
    broker.set_queue_limits("default", 5, (100, 60.0))
    result = tasks.add.delay(1, 1)
    assert kinds(result.id) == ["queued"]


def test_a_chain_step_waits_for_the_step_before_it() -> None:
    result = djqueue.chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async()
    first = result.parent
    [reason] = reasons(result.id)
    assert reason.kind == "upstream"
    assert "waits for the step before it to succeed (PENDING now)" in reason.text
    assert reason.links[0].url == reverse("admin:djqueue_job_change", args=[first.id])


def test_a_chord_body_waits_for_its_header() -> None:
    header = [tasks.add.s(1, 1), tasks.add.s(2, 2), tasks.add.s(3, 3)]
    result = djqueue.chord(header, tasks.xsum.s()).apply_async()
    [done] = claim(limit=1)
    broker.finish(
        [Outcome(done.id, done.attempt, done.task_name, states.SUCCESS, "2", worker=done.worker)]
    )
    [reason] = reasons(result.id)
    assert reason.kind == "upstream"
    assert "2 of 3 header job(s) not finished" in reason.text
    assert len(reason.links) == 2


def test_a_failed_unique_job_whose_key_another_job_holds() -> None:
    first = tasks.unique_report.delay(7)
    [claimed] = claim()
    again = tasks.unique_report.delay(7)  # the first no longer waits: a new job
    assert again.id != first.id
    broker.finish(
        [
            Outcome(
                claimed.id,
                claimed.attempt,
                claimed.task_name,
                states.FAILURE,
                error_type="ValueError",
                error_message="no",
                worker=claimed.worker,
            )
        ]
    )
    [reason] = reasons(first.id)
    assert reason.kind == "unique-key"
    assert "'tests.testapp.tasks.unique_report:report:7'" in reason.text
    assert reason.links[0].url == reverse("admin:djqueue_job_change", args=[again.id])
    assert reasons(again.id)[0].kind == "queued"


def test_a_claimed_job_waits_in_its_workers_buffer() -> None:
    result = tasks.add.delay(1, 2)
    claim()
    [reason] = reasons(result.id)
    assert reason.kind == "reserved"
    assert "'host.1.abc' claimed it" in reason.text


def test_a_job_held_by_a_worker_that_stopped() -> None:
    result = tasks.add.delay(1, 2)
    [claimed] = claim()
    broker.mark_started("host.1.abc", [(claimed.id, claimed.attempt, 0.0)])
    assert reasons(result.id) == []  # running, on a live worker
    broker.worker_stopped("host.1.abc", 0)
    [reason] = reasons(result.id)
    assert reason.kind == "lost-worker"
    assert "'host.1.abc' stopped at" in reason.text
    assert "when its lease runs out at" in reason.text


def test_a_job_held_by_a_worker_without_a_row() -> None:
    result = tasks.add.delay(1, 2)
    broker.claim(["default"], 1, "never.registered", 30.0, limited=False)
    [reason] = reasons(result.id)
    assert reason.kind == "lost-worker"
    assert "is not known (no worker row)" in reason.text


def test_reasons_add_up() -> None:
    broker.set_paused("later", True)
    result = tasks.add.apply_async((1, 2), queue="later", countdown=60)
    assert kinds(result.id) == ["not-due", "paused", "no-worker"]


def test_running_and_finished_jobs_have_no_reason() -> None:
    result = tasks.add.delay(1, 2)
    [claimed] = claim()
    broker.mark_started("host.1.abc", [(claimed.id, claimed.attempt, 0.0)])
    assert reasons(result.id) == []
    broker.finish(
        [
            Outcome(
                claimed.id,
                claimed.attempt,
                claimed.task_name,
                states.SUCCESS,
                "3",
                worker=claimed.worker,
            )
        ]
    )
    assert reasons(result.id) == []
    assert why.of(uuid.uuid4(), EVERYTHING) == []


def test_links_to_pages_the_reader_may_not_open_are_left_out() -> None:
    result = tasks.add.apply_async((1, 2), queue="nobody")
    nothing = access.Visible.to(AnonymousUser())
    [reason] = why.of(uuid.UUID(str(result.id)), nothing)
    assert reason.links == ()


def test_jobs_ahead_are_counted_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "AHEAD_BOUND", 3)
    for n in range(5):
        tasks.add.delay(n, n)
    last = tasks.add.delay(9, 9)
    assert "3+ job(s) ahead" in reasons(last.id)[0].text


def test_times_are_the_databases() -> None:
    result = tasks.add.apply_async((1, 2), countdown=90)
    found = waiting.read(uuid.UUID(str(result.id)))
    assert found is not None
    assert datetime.timedelta(seconds=80) < found.eta - found.now <= datetime.timedelta(seconds=90)
    assert abs(found.now - timezone.now()) < datetime.timedelta(seconds=5)
