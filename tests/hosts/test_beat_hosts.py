"""Schedulers (``runbeat``) on hosts of their own, the leader's host cut off: another
host's scheduler takes over once the server has ended the silent host's session (and
with it the leader lock), the one cut off steps down, and every slot of an every-second
task is sent exactly once, none missed.

The smoke test (default run) cuts the leader of two hosts off once; the full ones
(``--hosts-full``) cut the leader of four hosts off twice, healing each in between,
with the suite's short link guards and with djqueue's defaults.
"""

from __future__ import annotations

import datetime
import itertools

import pytest

from djqueue.db.models import IntervalSchedule, Job, PeriodicRun, PeriodicTask
from tests.acceptance.conftest import wait_until
from tests.hosts import observe
from tests.hosts.site import HostProcess, OnHosts

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(600)]

NOOP = "tests.testapp.tasks.noop"
LEADER = "is now the leader"
STEPPED_DOWN = "no longer leading"
SECOND = datetime.timedelta(seconds=1)
# Seconds until another host leads: the server ends the silent session within about
# 4 s with the suite's link guards, 30 s with djqueue's defaults (TCP_USER_TIMEOUT_SECONDS),
# and followers try every second.
TAKEOVER_LIMIT = {"short": 30.0, "default": 90.0}


@pytest.mark.parametrize(
    "guards", ["short", pytest.param("default", marks=pytest.mark.hosts(full=True))]
)
def test_the_leader_moves_to_another_host_when_its_host_is_cut_off(
    on_hosts: OnHosts, guards: str, full: bool, figures: dict[str, object]
) -> None:
    if guards == "default":
        on_hosts.guards = {}
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    row = PeriodicTask.objects.create(name="hosts", task=NOOP, interval=interval, catch_up="all")
    beats = [on_hosts.beat(host) for host in on_hosts.hosts]
    for beat in beats:
        beat.wait_for_log("ready: waiting to lead")
    [leader] = wait_until(lambda: _leaders(beats), 30, "a leader")

    takeovers = []
    for _ in range(2 if full else 1):
        wait_until(lambda r=row: len(_slots(r)) >= 2, 30, "the leader to send slots")
        leader.host.cut()
        clock = observe.Stopwatch()
        [leader] = wait_until(
            lambda cut=leader: _leaders([b for b in beats if b is not cut]),
            TAKEOVER_LIMIT[guards],
            "a scheduler on another host to lead",
        )
        takeovers.append(clock())
        _heal_and_see_it_step_down([b for b in beats if b.host.cut_off], TAKEOVER_LIMIT[guards])
    # The last leader catches up on the slots of the takeover and goes on.
    caught_up_to = _db_now() + SECOND
    wait_until(lambda: _slots(row)[-1:] >= [caught_up_to], 30, "the slots after the last cut")
    on_hosts.kill_all()

    found = _slots(row)
    expected = int((found[-1] - found[0]) / SECOND) + 1
    jobs = Job.objects.filter(task_name=NOOP).count()
    figures.update(
        {
            "hosts with a scheduler": len(beats),
            "leaders cut off": len(takeovers),
            "seconds until another host led (max)": max(takeovers),
            "slots sent": len(found),
            "slots sent twice": jobs - len(set(found)),
            "slots missed": expected - len(set(found)),
        }
    )
    assert found[0] == row.anchor + SECOND, "the first slot was missed"
    assert jobs == len(set(found)), f"{jobs} jobs for {len(set(found))} slots"
    assert set(_gaps(found)) == {SECOND}, f"slots missed: {_gaps(found)}"
    # One leader at the start and one per takeover, no other change of leader (a host
    # healed may lead again later, once the one after it is cut off).
    assert sum(beat.log().count(LEADER) for beat in beats) == len(takeovers) + 1


def _heal_and_see_it_step_down(cut: list[HostProcess], limit: float) -> None:
    """The schedulers of ``cut`` step down while still cut off (their statements and
    pings go unanswered for longer than their guards allow); then their hosts heal."""
    for beat in cut:
        wait_until(lambda b=beat: not _leading(b), limit, f"{beat.hostname} to step down")
        beat.host.heal()


def _leading(beat: HostProcess) -> bool:
    """Whether the scheduler's log says it leads now (it may not know it was cut off)."""
    log = beat.log()
    return beat.process.poll() is None and log.rfind(LEADER) > log.rfind(STEPPED_DOWN)


def _leaders(beats: list[HostProcess]) -> list[HostProcess]:
    return [beat for beat in beats if _leading(beat)]


def _slots(row: PeriodicTask) -> list[datetime.datetime]:
    return list(
        PeriodicRun.objects.filter(periodic_task=row)
        .order_by("slot")
        .values_list("slot", flat=True)
    )


def _gaps(found: list[datetime.datetime]) -> list[datetime.timedelta]:
    return [later - earlier for earlier, later in itertools.pairwise(found)]


def _db_now() -> datetime.datetime:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        found: datetime.datetime = cursor.fetchone()[0]
        return found
