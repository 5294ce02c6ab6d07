"""Workers on hosts of their own, a host cut off from the server: jobs spread over the
hosts, a vanished host's jobs are rescued and end SUCCESS elsewhere, nothing runs twice
under one attempt, and once the host is back its late outcomes are fenced off.

The smoke test (default run) uses two hosts with one worker each; the full tests
(``--hosts-full``) four hosts with two workers each, under a steady supply of jobs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest

from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import wait_until
from tests.hosts import observe
from tests.hosts.lab import Host
from tests.hosts.site import OnHosts

pytestmark = [pytest.mark.timeout(600)]

# Seconds a recording job takes: long enough that a host cut off is caught running some.
JOB_SECONDS = 0.5
# Seconds within which a cut-off host's jobs must end SUCCESS elsewhere (the lease is 2 s).
RESCUE_LIMIT = 60.0
# Seconds a healed host may take to run jobs again.
RECOVERY_LIMIT = 60.0
# Seconds for everything sent to finish at the end.
DRAIN_LIMIT = 120.0
PER_HOST = 2


@pytest.mark.hosts
@pytest.mark.timeout(300)
def test_a_host_cut_off_is_rescued_and_fenced_when_it_comes_back(
    on_hosts: OnHosts, figures: dict[str, object]
) -> None:
    kept, lost = on_hosts.hosts[:2]
    on_hosts.workers([kept, lost], per_host=1)
    feeder = observe.Feeder(low=8, batch=30, seconds=JOB_SECONDS)
    _all_at_work([kept, lost], lost, feeder)

    rescued = _cut_and_rescue(lost, feeder, figures)
    _heal_and_recover(lost, on_hosts, feeder, figures)
    _late_outcomes_fenced(lost, on_hosts, rescued, figures)
    _nothing_lost_or_run_twice(feeder, figures)


@pytest.mark.hosts(full=True)
def test_jobs_spread_over_hosts_and_a_vanished_host_is_rescued(
    on_hosts: OnHosts, figures: dict[str, object]
) -> None:
    hosts = on_hosts.hosts
    on_hosts.workers(hosts, per_host=PER_HOST)
    feeder = observe.Feeder(low=40, batch=80, seconds=JOB_SECONDS / 2)
    lost = hosts[2]
    _all_at_work(hosts, lost, feeder)
    before = observe.executions_per_host(hosts)
    figures.update({f"executions on {name} before the cut": n for name, n in before.items()})

    _cut_and_rescue(lost, feeder, figures)  # and it stays cut off
    wait_until(_fed_until_drained(feeder, 400), DRAIN_LIMIT, "400 jobs sent and done", 0.2)
    after = observe.executions_per_host(hosts)
    figures.update({f"executions on {name} in all": n for name, n in after.items()})
    _nothing_lost_or_run_twice(feeder, figures)
    # The others took over its share: each ran more than before.
    assert all(after[host.name] > before[host.name] for host in hosts if host is not lost)
    # As the worker list shows them: named after the hosts they run on.
    assert set(Worker.objects.values_list("hostname", flat=True)) == {h.name for h in hosts}


POOLS = {
    "threads": ("-P", "threads", "-c", "2"),
    "prefork": ("-P", "prefork", "-c", "2"),
    "solo": ("-P", "solo"),
    "gevent": ("-P", "gevent", "-c", "10"),
}
NO_GEVENT = pytest.mark.skipif(
    importlib.util.find_spec("gevent") is None, reason="gevent is not installed"
)


@pytest.mark.hosts(full=True)
@pytest.mark.parametrize(
    ("pool", "guards"),
    [
        ("threads", "short"),
        ("threads", "default"),
        ("prefork", "short"),
        ("prefork", "default"),
        ("solo", "short"),
        pytest.param("gevent", "short", marks=NO_GEVENT),
    ],
)
def test_a_partition_longer_than_the_lease_heals_without_loss(
    on_hosts: OnHosts, pool: str, guards: str, figures: dict[str, object]
) -> None:
    # Short guards: the host's connections are given up during the partition and made
    # anew after it. djqueue's defaults (30 s): they outlive it, TCP resends what was
    # sent into the cut, and the late outcomes arrive on the old connections.
    if guards == "default":
        on_hosts.guards = {}
    hosts = on_hosts.hosts
    isolated = hosts[1]
    # The isolated host runs ``pool``, the others threads.
    on_hosts.workers(hosts, PER_HOST, lambda host: POOLS[pool if host is isolated else "threads"])
    feeder = observe.Feeder(low=40, batch=80, seconds=JOB_SECONDS)
    _all_at_work(hosts, isolated, feeder)

    # The partition lasts until every job the host held is done elsewhere: longer than
    # the lease, by construction.
    rescued = _cut_and_rescue(isolated, feeder, figures)
    _heal_and_recover(isolated, on_hosts, feeder, figures)
    _late_outcomes_fenced(isolated, on_hosts, rescued, figures)
    reconnected = any("reachable again" in p.log() for p in on_hosts.on(isolated))
    figures["the isolated host's workers reconnected"] = reconnected
    _nothing_lost_or_run_twice(feeder, figures)


@pytest.mark.hosts(full=True)
def test_a_host_whose_replies_are_lost_loses_nothing(
    on_hosts: OnHosts, figures: dict[str, object]
) -> None:
    # Cut one way: the server runs and commits what the host sends (claims, outcomes,
    # heartbeats), and the host never hears back, until its guards end its connections.
    hosts = on_hosts.hosts
    on_hosts.workers(hosts, per_host=PER_HOST)
    feeder = observe.Feeder(low=40, batch=80, seconds=JOB_SECONDS / 2)
    deaf = hosts[3]
    _all_at_work(hosts, deaf, feeder)

    deaf.cut(inbound=True, outbound=False)
    clock = observe.Stopwatch()
    wait_until(_fed_until_drained(feeder, 400), DRAIN_LIMIT, "400 jobs sent and done", 0.2)
    figures["seconds until 400 jobs were done, one host deaf"] = clock()
    figures["jobs done in the name of the deaf host"] = Job.objects.filter(
        worker__startswith=observe.prefix(deaf)
    ).count()
    _heal_and_recover(deaf, on_hosts, feeder, figures)
    _nothing_lost_or_run_twice(feeder, figures)


def _all_at_work(hosts: list[Host], victim: Host, feeder: observe.Feeder) -> None:
    """Wait until every host has run jobs and ``victim`` holds some."""

    def check() -> bool:
        feeder.feed()
        return all(observe.ran_by(host) for host in hosts) and bool(observe.held_by(victim))

    wait_until(check, 60, "every host to run jobs, and the one to be cut off to hold some", 0.2)


def _cut_and_rescue(lost: Host, feeder: observe.Feeder, figures: dict[str, object]) -> list[str]:
    """Cut ``lost`` off; the jobs it held must end SUCCESS elsewhere (bar an outcome it
    sent just before the cut, which may have made it). Returns the ids of those rescued."""
    lost.cut()
    clock = observe.Stopwatch()
    held = observe.held_by(lost)  # nothing it sends reaches the server any more
    assert held, "the host held nothing when it was cut off: nothing to rescue"

    def all_done() -> bool:
        feeder.feed()
        return Job.objects.filter(id__in=held, state="SUCCESS").count() == len(held)

    wait_until(
        all_done, RESCUE_LIMIT, f"the {len(held)} job(s) held by the host cut off to succeed"
    )
    rescued = observe.finished_elsewhere(held, lost)
    figures["jobs held by the host when cut off"] = len(held)
    figures["of those, rescued by other hosts"] = len(rescued)
    figures["seconds until they all ended SUCCESS"] = clock()
    assert rescued, "no job was taken from the host cut off"
    assert all(job.attempt >= 2 for job in rescued), [(job.id, job.attempt) for job in rescued]
    # Each job's history, as its page shows it, names the attempt lost with the host.
    lost_there = [
        job
        for job in rescued
        if any(
            entry["outcome"] == "LOST" and entry["worker"].startswith(observe.prefix(lost))
            for entry in job.history or []
        )
    ]
    assert lost_there == rescued, [job.history for job in rescued if job not in lost_there]
    return [str(job.id) for job in rescued]


def _heal_and_recover(
    lost: Host, on_hosts: OnHosts, feeder: observe.Feeder, figures: dict[str, object]
) -> None:
    """Heal ``lost``'s link; it must run jobs again, its workers still the same."""
    before = observe.ran_by(lost)
    lost.heal()
    clock = observe.Stopwatch()

    def ran_a_new_one() -> bool:
        feeder.feed()  # work keeps coming, so that the host finds some once it is back
        return bool(observe.ran_by(lost) - before)

    wait_until(ran_a_new_one, RECOVERY_LIMIT, "the healed host to run jobs again", 0.2)
    figures["seconds until the healed host ran jobs again"] = clock()
    assert all(process.process.poll() is None for process in on_hosts.on(lost))


def _late_outcomes_fenced(
    lost: Host, on_hosts: OnHosts, rescued: list[str], figures: dict[str, object]
) -> None:
    """Jobs taken from ``lost`` that it ran: their late outcomes are ignored, not kept."""
    ran_there = sorted(observe.ran_by(lost, rescued))
    processes = on_hosts.on(lost)
    wait_until(
        lambda: observe.fenced(processes, ran_there) == set(ran_there),
        timeout=RECOVERY_LIMIT,
        what=f"the healed host to report its {len(ran_there)} late outcome(s) and be refused",
    )
    figures["late outcomes fenced"] = len(ran_there)
    # Each stayed as its rescuer left it: SUCCESS in the name of a worker elsewhere.
    assert len(observe.finished_elsewhere(rescued, lost)) == len(rescued)


def _fed_until_drained(feeder: observe.Feeder, total: int) -> Callable[[], bool]:
    """A wait's check: feeds until ``total`` jobs were sent, then waits for them."""

    def check() -> bool:
        if len(feeder.sent) < total:
            feeder.feed()
            return False
        return not observe.unfinished()

    return check


def _nothing_lost_or_run_twice(feeder: observe.Feeder, figures: dict[str, object]) -> None:
    wait_until(lambda: not observe.unfinished(), DRAIN_LIMIT, "every job to finish", 0.2)
    tally = observe.tally()
    figures.update(tally.figures())
    assert tally.jobs == len(feeder.sent), tally
    assert tally.lost == 0, tally
    assert tally.ran_twice_in_one_attempt == 0, tally
    assert tally.succeeded_without_running == 0, tally
