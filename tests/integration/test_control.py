"""djqueue.control over the database: commands, replies, checks, and the reports read
from rows. Workers are played here by rows and by the worker side's own functions;
tests/acceptance/test_control.py runs real workers."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from djqueue import control
from djqueue.core import states
from djqueue.db import control as wire
from djqueue.db.models import Control, Job, Worker
from tests.acceptance.conftest import wait_until
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def _worker(name: str, queues: list[str] | None = None, alive: bool = True) -> Worker:
    beat = timezone.now() - datetime.timedelta(seconds=0 if alive else 3600)
    return Worker.objects.create(
        name=name,
        hostname="host",
        pid=1,
        pool="threads",
        concurrency=2,
        queues=queues or ["default"],
        started_at=beat - datetime.timedelta(seconds=1),
        last_heartbeat=beat,
    )


def test_the_module_is_reachable_as_celery_users_reach_it() -> None:
    import djqueue

    assert djqueue.control.inspect is control.inspect
    assert callable(control.revoke) and callable(control.ping)


def test_ping_with_no_live_worker_answers_nothing_at_once() -> None:
    _worker("gone.1.a", alive=False)
    assert control.ping(timeout=5) == []
    assert control.inspect(timeout=5).ping() is None
    assert control.inspect().active() is None


def test_replies_are_gathered_until_every_live_worker_answered() -> None:
    _worker("w1.1.a")
    _worker("w2.2.b")
    _worker("gone.3.c", alive=False)

    def answer_like_workers() -> None:
        # Each "worker" reads the command as a worker would, then answers.
        try:
            commands = wait_until(lambda: wire.pending("w1.1.a"), 20, "the command")
            for name in ("w1.1.a", "w2.2.b"):
                wire.answer(commands[0].id, name, {"ok": "pong"})
        finally:
            connection.close()

    thread = threading.Thread(target=answer_like_workers)
    thread.start()
    replies = control.ping(timeout=30)
    thread.join(timeout=30)
    assert sorted(replies, key=str) == [{"w1.1.a": {"ok": "pong"}}, {"w2.2.b": {"ok": "pong"}}]


def test_destinations_name_workers_or_their_node() -> None:
    assert wire.matches(None, "w1.12.abc")
    assert wire.matches(["w1"], "w1.12.abc")
    assert wire.matches(["w1.12.abc"], "w1.12.abc")
    assert not wire.matches(["w"], "w1.12.abc")
    assert not wire.matches("w1", "w1.12.abc")  # a row must hold a list
    assert not wire.matches([3], "w1.12.abc")


def test_one_shot_commands_lapse_and_lasting_ones_replace_each_other() -> None:
    w = _worker("w1.1.a")
    control.shutdown(destination=["nobody"])
    control.time_limit(tasks.sleep.name, soft=5, hard=10)
    control.time_limit(tasks.sleep.name, hard=20)
    lasting = Control.objects.filter(key=f"time_limit:{tasks.sleep.name}")
    assert [row.arguments["hard"] for row in lasting] == [20]
    assert Control.objects.get(command="shutdown").expires_at is not None
    seen = {c.command for c in wire.pending(w.name)}
    assert seen == {"shutdown", "time_limit"}
    # A worker that started after the one-shot command never sees it.
    Worker.objects.filter(pk=w.pk).update(started_at=timezone.now() + datetime.timedelta(1))
    assert {c.command for c in wire.pending(w.name)} == {"time_limit"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: control.ping(timeout=0), "timeout must be a positive number"),
        (lambda: control.pool_grow(0), "n must be a whole number"),
        (lambda: control.pool_shrink("2"), "n must be a whole number"),  # type: ignore[arg-type]
        (lambda: control.rate_limit(tasks.add.name, "ten"), "rate_limit 'ten' is malformed"),
        (lambda: control.time_limit(tasks.add.name, soft=5, hard=1), "must not pass the hard"),
        (lambda: control.time_limit(tasks.add.name, hard=-1), "hard must be a positive"),
        (lambda: control.revoke("nope"), "job id 'nope' is not a UUID"),
        (lambda: control.revoke(tasks.add.delay(1, 1).id, signal="SIGNOPE"), "not a signal"),
        (lambda: control.broadcast("reboot"), "unknown control command 'reboot'"),
        (lambda: control.inspect(destination=[""]), "destination must be worker names"),
        (lambda: control.add_consumer(""), "queue must be a name"),
    ],
)
def test_bad_arguments_say_what_was_wrong(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_rate_limit_of_an_unknown_task_suggests_the_name() -> None:
    with pytest.raises(Exception, match="did you mean"):
        control.rate_limit("tests.testapp.tasks.ad", "1/s")


def test_rate_limit_changes_the_waiting_jobs_of_the_task() -> None:
    waiting = tasks.add.delay(1, 1)
    other = tasks.noop.delay()
    control.rate_limit(tasks.add.name, "2/m")
    job = Job.objects.get(pk=waiting.id)
    assert (job.rate_limit, job.rate_period, job.gated) == (2, 60.0, True)
    assert Job.objects.get(pk=other.id).gated is False
    control.rate_limit(tasks.add.name, None)
    job = Job.objects.get(pk=waiting.id)
    assert (job.rate_limit, job.rate_period, job.gated) == (None, None, False)


def test_revoke_takes_one_id_or_many() -> None:
    one, two, three = (tasks.add.delay(i, i) for i in range(3))
    control.revoke(str(one.id))
    control.revoke([two.id, str(three.id)], terminate=True, signal="SIGKILL")
    states_now = set(Job.objects.filter(pk__in=[one.id, two.id, three.id]).values_list("state"))
    assert states_now == {(states.REVOKED,)}


def test_held_scheduled_and_revoked_jobs_are_read_from_rows() -> None:
    _worker("w1.1.a", ["default"])
    _worker("w2.2.b", ["other"])
    running = tasks.add.apply_async((1, 2))
    received = tasks.add.apply_async((3, 4), priority=3)
    later = tasks.add.apply_async((5, 6), countdown=3600)
    revoked = tasks.add.delay(7, 8)
    revoked.revoke()
    now = timezone.now()
    Job.objects.filter(pk=running.id).update(
        state=states.STARTED, worker="w1.1.a", started_at=now, claimed_at=now, attempt=1
    )
    Job.objects.filter(pk=received.id).update(
        state=states.RECEIVED, worker="w1.1.a", claimed_at=now, attempt=1
    )
    inspect = control.inspect()

    active = inspect.active()
    assert active is not None and set(active) == {"w1.1.a", "w2.2.b"}
    [request] = active["w1.1.a"]
    assert request["id"] == str(running.id) and request["name"] == tasks.add.name
    assert request["args"] == [1, 2] and request["kwargs"] == {}
    assert request["acknowledged"] is True and request["time_start"] == now.timestamp()
    assert request["delivery_info"]["routing_key"] == "default"
    assert active["w2.2.b"] == []

    reserved = inspect.reserved()
    assert reserved is not None
    assert [r["id"] for r in reserved["w1.1.a"]] == [str(received.id)]
    assert reserved["w1.1.a"][0]["delivery_info"]["priority"] == 3

    scheduled = inspect.scheduled()
    assert scheduled is not None
    assert [s["request"]["id"] for s in scheduled["w1.1.a"]] == [str(later.id)]
    assert scheduled["w2.2.b"] == []  # it serves another queue

    assert inspect.revoked() == {"w1.1.a": [str(revoked.id)], "w2.2.b": [str(revoked.id)]}
    queues = inspect.active_queues()
    assert queues is not None and [q["name"] for q in queues["w2.2.b"]] == ["other"]

    only = control.inspect(destination="w2").active()
    assert only == {"w2.2.b": []}

    # A job is listed once, under one worker, even when several serve its queue.
    _worker("w3.3.c", ["default", "other"])
    elsewhere = tasks.add.apply_async((9, 9), countdown=3600, queue="other")
    scheduled = control.inspect().scheduled()
    assert scheduled is not None
    assert [s["request"]["id"] for s in scheduled["w1.1.a"]] == [str(later.id)]
    assert [s["request"]["id"] for s in scheduled["w2.2.b"]] == [str(elsewhere.id)]
    assert scheduled["w3.3.c"] == []


def test_revoke_keeps_the_signal_asked_for_in_the_row() -> None:
    running = tasks.add.delay(1, 1)
    Job.objects.filter(pk=running.id).update(state=states.STARTED, worker="w1.1.a", attempt=1)
    control.revoke(running.id, terminate=True, signal="term")
    job = Job.objects.get(pk=running.id)
    assert job.revoke_requested_at is not None and job.revoke_signal == 15
    from djqueue.db import broker

    assert broker.revoke_signal(running.id, 1, "w1.1.a") == 15
    assert broker.revoke_signal(running.id, 2, "w1.1.a") is None  # another run: not asked
    running.revoke(terminate=True)  # SIGKILL, the default, asked again
    assert Job.objects.get(pk=running.id).revoke_signal is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("SIGSTOP", "would not stop the job's process"),
        ("CHLD", "would not stop the job's process"),
        (0, "not a signal name or number"),
        (True, "not a signal name or number"),
    ],
)
def test_revoke_refuses_signals_that_would_not_stop_the_job(given: Any, message: str) -> None:
    waiting = tasks.add.delay(1, 1)
    with pytest.raises(ValueError, match=message):
        control.revoke(waiting.id, terminate=True, signal=given)
    with pytest.raises(ValueError, match=message):
        waiting.revoke(terminate=True, signal=given)
    assert Job.objects.get(pk=waiting.id).state == states.PENDING  # nothing revoked


def test_revoke_with_a_destination_revokes_only_the_jobs_those_workers_hold() -> None:
    mine, theirs, waiting = (tasks.add.delay(i, i) for i in range(3))
    Job.objects.filter(pk=mine.id).update(state=states.STARTED, worker="w1.1.a", attempt=1)
    Job.objects.filter(pk=theirs.id).update(state=states.STARTED, worker="w2.2.b", attempt=1)

    control.revoke([mine.id, theirs.id, waiting.id], destination=["w1"], terminate=True)

    asked = {str(k): v for k, v in Job.objects.values_list("id", "revoke_requested_at")}
    assert asked[mine.id] is not None and asked[theirs.id] is None
    # A waiting job belongs to no worker: a destination leaves it alone.
    assert Job.objects.get(pk=waiting.id).state == states.PENDING
    control.revoke(waiting.id)
    assert Job.objects.get(pk=waiting.id).state == states.REVOKED


def test_rate_limit_refuses_a_destination_and_time_limit_keeps_one_per_destination() -> None:
    with pytest.raises(ValueError, match="rate limits hold across all workers"):
        control.rate_limit(tasks.add.name, "1/s", destination=["w1"])
    assert not Control.objects.filter(command="rate_limit").exists()

    control.time_limit(tasks.sleep.name, hard=10)
    control.time_limit(tasks.sleep.name, hard=20, destination=["w1"])
    control.time_limit(tasks.sleep.name, hard=30, destination=["w1"])
    lasting = Control.objects.filter(command="time_limit").order_by("created_at")
    # The one for every worker stays; the later one for w1 replaced the earlier.
    assert [(row.destination, row.arguments["hard"]) for row in lasting] == [
        (None, 10),
        (["w1"], 30),
    ]
