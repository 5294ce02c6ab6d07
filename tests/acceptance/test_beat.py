"""Real ``manage.py runbeat`` processes: leadership, takeover after kill -9, live edits."""

from __future__ import annotations

import datetime
import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from djqueue.db.models import IntervalSchedule, Job, PeriodicRun, PeriodicTask
from tests.acceptance.conftest import TcpProxy, WorkerProcess, Workers, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

NOOP = "tests.testapp.tasks.noop"
LEADER = "is now the leader"
SECOND = datetime.timedelta(seconds=1)


class Beats(Workers):
    """Starts ``runbeat`` processes for one test; every one is killed at teardown."""

    def start_beat(self, *args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        """Start ``runbeat`` with ``args`` (it is not waited for: it may not lead)."""
        return self.start(
            *args, env=env, entry=("-m", "django", "runbeat"), prefix="b", wait_ready=False
        )

    def leaders(self) -> list[WorkerProcess]:
        """Processes alive whose log says they lead (the last one to say so leads)."""
        return [b for b in self.started if b.process.poll() is None and LEADER in b.log()]


@pytest.fixture
def beats(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Beats]:
    started = Beats(tmp_path, connection.settings_dict["NAME"])
    request.node._djqueue_workers = started  # logs attached to failure reports
    try:
        yield started
    finally:
        started.kill_all()


def every_second(name: str, catch_up: str) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    return PeriodicTask.objects.create(name=name, task=NOOP, interval=interval, catch_up=catch_up)


def slots(row: PeriodicTask) -> list[datetime.datetime]:
    return list(
        PeriodicRun.objects.filter(periodic_task=row)
        .order_by("slot")
        .values_list("slot", flat=True)
    )


def gaps(found: list[datetime.datetime]) -> list[datetime.timedelta]:
    return [later - earlier for earlier, later in itertools.pairwise(found)]


@pytest.mark.parametrize(
    "phase",
    [4, pytest.param(30, marks=pytest.mark.soak, id="a-minute")],
    ids=lambda seconds: f"{seconds}s",
)
def test_three_schedulers_fire_every_slot_once_across_a_leader_kill(
    beats: Beats, phase: float
) -> None:
    """``phase`` seconds under the first leader, then as long under its successor."""
    every_all = every_second("all", "all")
    every_once = every_second("once", "once")
    for _ in range(3):
        beats.start_beat()
    for beat in beats.started:
        beat.wait_for_log("ready: waiting to lead")
    [leader] = wait_until(beats.leaders, 10, "a leader")
    time.sleep(phase)
    leader.send(signal.SIGKILL)
    leader.wait_exit(5)
    killed_at = time.monotonic()
    [successor] = wait_until(beats.leaders, 10, "a new leader")
    takeover = time.monotonic() - killed_at
    assert successor is not leader
    time.sleep(phase)
    for beat in beats.started:
        beat.kill()

    # "all": the new leader starts from the last slot the old one recorded and fires
    # every slot since, so the whole window has one run per second: no gap, no double.
    found = slots(every_all)
    assert len(found) >= 2 * phase - 1
    assert found[0] == every_all.anchor + SECOND
    assert set(gaps(found)) == {SECOND}, found
    # "once": the seconds missed while nobody led (the takeover: the followers' retry
    # interval of 1 s plus process scheduling) are caught up by one run, so one gap of
    # about the takeover time (plus a slot, plus the new leader's first read) may show;
    # still never a slot twice.
    found = slots(every_once)
    assert len(set(found)) == len(found)
    assert max(gaps(found)) <= datetime.timedelta(seconds=takeover + 2.5), (takeover, found)
    assert sum(g > SECOND for g in gaps(found)) <= 1, found
    # One job per run: the unique (task, slot) pair let no second job in.
    runs = PeriodicRun.objects.count()
    assert Job.objects.filter(task_name=NOOP).count() == runs
    assert len(set(PeriodicRun.objects.values_list("job_id", flat=True))) == runs


def test_edits_reach_a_running_scheduler_within_two_seconds(
    beats: Beats, admin_client: Client
) -> None:
    # Polling only every 30 s: changes within 2 s must come from notifications.
    beat = beats.start_beat("--max-interval", "30")
    beat.wait_for_log(LEADER)

    saved = time.monotonic()
    row = every_second("new", "once")
    wait_until(lambda: slots(row), 2.5, "the first run of a task made after the start")
    assert time.monotonic() - saved <= 2.5

    row.enabled = False
    row.save()
    time.sleep(1)  # a run in flight when the change was saved may still land
    stopped_at = len(slots(row))
    time.sleep(2)
    assert len(slots(row)) == stopped_at

    # An admin action (a bulk update, which sends no save signal) wakes it too.
    response = admin_client.post(
        reverse("admin:djqueue_periodictask_changelist"),
        {"action": "enable", "_selected_action": [row.pk]},
    )
    assert response.status_code == 302
    resumed = time.monotonic()
    wait_until(lambda: len(slots(row)) > stopped_at, 2, "runs after re-enabling")
    assert time.monotonic() - resumed <= 2
    assert beat.process.poll() is None


def test_a_worker_started_with_beat_sends_and_runs_periodic_tasks(workers: Workers) -> None:
    worker = workers.start("--beat", "-P", "threads", "-c", "2")
    worker.wait_for_log(LEADER)
    row = every_second("in-worker", "once")
    wait_until(
        lambda: Job.objects.filter(task_name=NOOP, state="SUCCESS").count() >= 2,
        5,
        "two runs sent and run by the same process",
    )
    assert len(set(slots(row))) == len(slots(row)) >= 2


def test_a_scheduler_rides_out_a_database_outage(beats: Beats, proxy: TcpProxy) -> None:
    proxy.restore()
    row = every_second("outage", "all")
    beat = beats.start_beat(env={"PGPORT": str(proxy.port)})
    beat.wait_for_log(LEADER)
    wait_until(lambda: len(slots(row)) >= 2, 5, "runs before the outage")
    proxy.cut()
    time.sleep(3)
    proxy.restore()
    beat.wait_for_log("database reachable again", timeout=20)
    restored = datetime.datetime.now(datetime.UTC)
    wait_until(lambda: slots(row)[-1] >= restored, 10, "runs after the outage")
    log = beat.log()
    assert "database unavailable" in log and "no longer leading" in log
    assert log.count(LEADER) == 2  # it took the lead again
    # Under "all", the slots of the outage were sent once it was over: none is missing.
    assert set(gaps(slots(row))) == {SECOND}
