"""Workers on hosts of their own, a host cut off from the server: jobs spread over the
hosts, a vanished host's jobs are rescued and end SUCCESS elsewhere, nothing runs twice
under one attempt, and once the host is back its late outcomes are fenced off.

The smoke test (default run) uses two hosts with one worker each; the full tests
(``--hosts-full``) four hosts with two workers each.
"""

from __future__ import annotations

import pytest

from djqueue.db.models import Job
from tests.acceptance.conftest import wait_until
from tests.hosts import observe
from tests.hosts.lab import Host
from tests.hosts.site import HostProcess, OnHosts

pytestmark = [pytest.mark.timeout(300)]

# Seconds a recording job takes: long enough that a host cut off is caught running some.
JOB_SECONDS = 0.5
# Seconds within which a cut-off host's jobs must end SUCCESS elsewhere (the lease is 2 s).
RESCUE_LIMIT = 60.0
# Seconds a healed host may take to run jobs again (its links were given up: reconnect).
RECOVERY_LIMIT = 60.0


@pytest.mark.hosts
def test_a_host_cut_off_is_rescued_and_fenced_when_it_comes_back(
    on_hosts: OnHosts, figures: dict[str, object]
) -> None:
    kept, lost = on_hosts.hosts[:2]
    on_hosts.workers([kept, lost], per_host=1)
    sent = observe.send(60, JOB_SECONDS)
    # Both hosts at work, and the one to lose running jobs when it goes.
    wait_until(
        lambda: observe.ran_by(kept) and observe.ran_by(lost) and observe.held_by(lost),
        timeout=60,
        what="both hosts to run jobs, and the one to be cut off to hold some",
    )

    rescued = _cut_and_rescue(lost, kept, figures)
    sent += _heal_and_recover(lost, on_hosts, figures)
    _late_outcomes_fenced(lost, on_hosts.on(lost), rescued, figures)
    wait_until(lambda: not observe.unfinished(), 60, "every job to finish")
    _nothing_lost_or_run_twice(sent, figures)


def _cut_and_rescue(lost: Host, kept: Host, figures: dict[str, object]) -> list[str]:
    """Cut ``lost`` off; the jobs it held must end SUCCESS, on ``kept`` (an outcome it
    sent just before the cut may still have made it). Returns the ids of those rescued."""
    lost.cut()
    clock = observe.Stopwatch()
    held = observe.held_by(lost)  # nothing it sends reaches the server any more
    assert held, "the host held nothing when it was cut off: nothing to rescue"
    wait_until(
        lambda: Job.objects.filter(id__in=held, state="SUCCESS").count() == len(held),
        timeout=RESCUE_LIMIT,
        what=f"the {len(held)} job(s) held by the host cut off to end SUCCESS",
        interval=0.2,
    )
    rescued = observe.finished_elsewhere(held, lost)
    figures["jobs held by the host when cut off"] = len(held)
    figures["of those, rescued by the other host"] = len(rescued)
    figures["seconds until they all ended SUCCESS"] = clock()
    assert rescued, "no job was taken from the host cut off"
    assert all(job.worker.startswith(observe.prefix(kept)) for job in rescued)
    assert all(job.attempt >= 2 for job in rescued), [(job.id, job.attempt) for job in rescued]
    return [str(job.id) for job in rescued]


def _heal_and_recover(lost: Host, on_hosts: OnHosts, figures: dict[str, object]) -> list[str]:
    """Heal ``lost``'s link; it must run jobs again. Returns the ids of jobs sent."""
    before = observe.ran_by(lost)
    lost.heal()
    clock = observe.Stopwatch()
    sent: list[str] = []

    def ran_a_new_one() -> bool:
        # Work keeps coming, so that the host finds some whenever it is back.
        if observe.unfinished() < 4:
            sent.extend(observe.send(8, JOB_SECONDS))
        return bool(observe.ran_by(lost) - before)

    wait_until(ran_a_new_one, RECOVERY_LIMIT, "the healed host to run jobs again", 0.2)
    figures["seconds until the healed host ran jobs again"] = clock()
    assert all(process.process.poll() is None for process in on_hosts.on(lost))
    return sent


def _late_outcomes_fenced(
    lost: Host, processes: list[HostProcess], rescued: list[str], figures: dict[str, object]
) -> None:
    """Jobs taken from ``lost`` that it ran: their late outcomes are ignored, not kept."""
    ran_there = sorted(observe.ran_by(lost, rescued))
    wait_until(
        lambda: observe.fenced(processes, ran_there) == set(ran_there),
        timeout=RECOVERY_LIMIT,
        what=f"the healed host to report its {len(ran_there)} late outcome(s) and be refused",
    )
    figures["late outcomes fenced"] = len(ran_there)
    # Each stayed as the rescuer left it: SUCCESS in the rescuer's name.
    assert len(observe.finished_elsewhere(rescued, lost)) == len(rescued)


def _nothing_lost_or_run_twice(sent: list[str], figures: dict[str, object]) -> None:
    tally = observe.tally()
    figures.update(tally.figures())
    assert tally.jobs == len(sent), tally
    assert tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally
    assert tally.succeeded_without_running == 0, tally
