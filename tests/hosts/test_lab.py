"""The lab itself: a second one takes addresses nobody uses, and what a run that died
left behind (hosts, links) is removed by the next one, while a live run's are kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.hosts import lab as labs
from tests.hosts.site import Site

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(120)]


def test_a_second_lab_takes_addresses_nobody_uses(site: Site) -> None:
    other = labs.Lab(1)
    names = [host.namespace for host in other.hosts]
    try:
        assert not other.network.overlaps(site.lab.network)
        assert set(names).isdisjoint(host.namespace for host in site.lab.hosts)
    finally:
        other.close()
    assert set(names).isdisjoint(labs.namespaces())


def test_what_a_dead_run_left_is_removed_and_a_live_runs_kept(site: Site) -> None:
    # A pid above the system's largest is no process, alive or to come.
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    namespace = f"{labs.NAMESPACE_PREFIX}{dead}-1-1"
    link = f"{labs.LINK_PREFIX}{dead}l1h1"
    subprocess.run(["ip", "netns", "add", namespace], check=True, timeout=30)
    subprocess.run(
        ["ip", "link", "add", link, "type", "veth", "peer", "eth0", "netns", namespace],
        check=True,
        timeout=30,
    )
    try:
        removed = labs.remove_stale()
        assert namespace in removed
        assert namespace not in labs.namespaces()
        # The live site's hosts stay.
        assert {host.namespace for host in site.lab.hosts} <= set(labs.namespaces())
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
