"""Five schedulers (``runbeat``), the leader killed every few seconds and replaced: every
slot of an every-second task (catching up on all missed slots) is sent exactly once."""

from __future__ import annotations

import datetime
import itertools
import random
import signal
import time

import pytest

from djqueue.db.models import IntervalSchedule, Job, PeriodicRun, PeriodicTask
from tests.acceptance.conftest import WorkerProcess, Workers, wait_until
from tests.chaos.conftest import Scale, db_now

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600), pytest.mark.django_db(transaction=True)]

NOOP = "tests.testapp.tasks.noop"
LEADER = "is now the leader"
SECOND = datetime.timedelta(seconds=1)
# Seconds a follower may take to lead once the leader is gone (it retries every second).
TAKEOVER_LIMIT = 15.0


def test_schedulers_fire_every_slot_once_while_leaders_are_killed(
    workers: Workers, scale: Scale, figures: dict[str, object]
) -> None:
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    row = PeriodicTask.objects.create(name="chaos", task=NOOP, interval=interval, catch_up="all")
    started = [_start_beat(workers) for _ in range(scale.beats)]
    for beat in started:
        beat.wait_for_log("ready: waiting to lead")
    [leader] = wait_until(lambda: _leaders(workers), 10, "a leader")

    chance = random.Random("schedulers")
    takeovers = []
    for _ in range(scale.beat_kills):
        time.sleep(chance.uniform(*scale.beat_every))  # the leader's term: time passing
        leader.send(signal.SIGKILL)
        leader.wait_exit(5)
        killed_at = time.monotonic()
        _start_beat(workers)  # five again
        [leader] = wait_until(lambda: _leaders(workers), TAKEOVER_LIMIT, "a new leader")
        takeovers.append(time.monotonic() - killed_at)
    # The last leader catches up on the slots of the takeover and goes on.
    caught_up_to = db_now() + SECOND
    wait_until(lambda: _slots(row)[-1:] >= [caught_up_to], 10, "the slots after the last kill")
    workers.kill_all()

    found = _slots(row)
    expected = int((found[-1] - found[0]) / SECOND) + 1 if found else 0
    # A slot sent twice shows as a second job: the run table's unique slot holds one.
    jobs = Job.objects.filter(task_name=NOOP).count()
    fired_twice = jobs - len(set(found))
    figures.update(
        {
            "schedulers": scale.beats,
            "leaders killed": len(takeovers),
            "slots sent": len(found),
            "slots sent twice": fired_twice,
            "slots missed": expected - len(set(found)),
            "time to a new leader (max s)": max(takeovers, default=0.0),
        }
    )
    assert found[0] == row.anchor + SECOND, "the first slot was missed"
    assert fired_twice == 0, f"{jobs} jobs for {len(set(found))} slots"
    assert set(_gaps(found)) == {SECOND}, f"slots missed: {_gaps(found)}"


def _start_beat(workers: Workers) -> WorkerProcess:
    return workers.start(entry=("-m", "django", "runbeat"), prefix="b", wait_ready=False)


def _leaders(workers: Workers) -> list[WorkerProcess]:
    """Schedulers alive whose log says they lead."""
    return [b for b in workers.started if b.process.poll() is None and LEADER in b.log()]


def _slots(row: PeriodicTask) -> list[datetime.datetime]:
    return list(
        PeriodicRun.objects.filter(periodic_task=row)
        .order_by("slot")
        .values_list("slot", flat=True)
    )


def _gaps(found: list[datetime.datetime]) -> list[datetime.timedelta]:
    return [later - earlier for earlier, later in itertools.pairwise(found)]
