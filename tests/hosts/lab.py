"""Worker hosts on one machine: network namespaces, each linked to this machine by a
veth pair on addresses of its own, whose links a test can cut and heal.

Host ``n`` of lab ``k`` is the network namespace ``djqueue-host-<pid>-<k>-<n>``
(``pid``: the process that made it). Its one link, ``eth0``, is the far end of a veth
pair whose near end, ``dqh<pid>l<k>h<n>``, stays in the machine's own namespace. The
lab takes a /24 of 10.231.0.0/16 that no address or route of the machine touches yet,
and gives every host a /30 of it: the near end has the first address (the server
listens there), the host the second. Hosts reach the server only over their own link,
as machines on a network do.

A process started on a host (:meth:`Host.command`) runs in its network namespace and in
a UTS namespace of its own whose hostname is the host's name, so that a worker started
there names itself after its host, as on a machine of its own.

:meth:`Host.cut` drops every packet on the host's link, both ways, with a blackhole
queueing discipline at each end: connections fall silent with no reset and no error,
as when a machine loses power or its cable is pulled, and each side learns of it only
from its own timeouts. Cut one way only, the server still gets what the host sends,
and the host hears nothing back. :meth:`Host.heal` lets packets through again; connections that
neither side gave up meanwhile carry on, their lost packets sent again by TCP.

Everything is removed by :meth:`Lab.close` (processes still running on a host are
killed, then its namespace is deleted, which deletes the veth pair with it), and
:func:`remove_stale` removes what a run that died left behind. Making a lab needs root
and the ``ip``, ``tc`` and ``unshare`` commands.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.chaos.cluster import alive

NAMESPACE_PREFIX = "djqueue-host-"
LINK_PREFIX = "dqh"
# Where the lab looks for a free /24.
SUPERNET = ipaddress.ip_network("10.231.0.0/16")
COMMANDS = ("ip", "tc", "unshare")


def unavailable() -> str:
    """Why a lab cannot be made here ("" when it can)."""
    missing = [name for name in COMMANDS if shutil.which(name) is None]
    if missing:
        return f"needs the {' and '.join(missing)} command(s) (iproute2, util-linux)"
    if os.geteuid() != 0:
        return "needs root to make network namespaces and links"
    return ""


@dataclass
class Host:
    """One host: a network namespace with one link to the machine."""

    name: str
    namespace: str
    near_link: str
    server_address: str  # the near end's address: where the host finds the server
    address: str  # the host's own address
    # The directions in which packets are dropped: "in" (to the host), "out" (from it).
    cut_off: set[str] = field(default_factory=set)

    def command(self, *args: str) -> list[str]:
        """The command line that runs ``args`` on this host, named after it."""
        # exec all the way: the process started is the program itself, with its pid.
        return [
            "ip",
            "netns",
            "exec",
            self.namespace,
            "unshare",
            "--uts",
            "sh",
            "-c",
            'hostname "$0" && exec "$@"',
            self.name,
            *args,
        ]

    def cut(self, inbound: bool = True, outbound: bool = True) -> None:
        """Drop every packet on the link from now on: those to the host (``inbound``),
        those from it (``outbound``), or both (a host gone)."""
        if inbound and "in" not in self.cut_off:
            _ip("tc", "qdisc", "add", "dev", self.near_link, "root", "blackhole")
            self.cut_off.add("in")
        if outbound and "out" not in self.cut_off:
            _ip("tc", "-n", self.namespace, "qdisc", "add", "dev", "eth0", "root", "blackhole")
            self.cut_off.add("out")

    def heal(self) -> None:
        """Let packets through again."""
        if "in" in self.cut_off:
            _ip("tc", "qdisc", "del", "dev", self.near_link, "root")
            self.cut_off.discard("in")
        if "out" in self.cut_off:
            _ip("tc", "-n", self.namespace, "qdisc", "del", "dev", "eth0", "root")
            self.cut_off.discard("out")

    def pids(self) -> list[int]:
        """Processes running in the host's network namespace."""
        return _namespace_pids(self.namespace)


class Lab:
    """``size`` hosts named ``host1`` to ``host<size>``; see the module."""

    made = 0  # labs made by this process: each names its hosts and links apart

    def __init__(self, size: int) -> None:
        self.owner = os.getpid()
        Lab.made += 1
        self.number = Lab.made
        self.network = _free_network()
        self.hosts: list[Host] = []
        subnets = list(self.network.subnets(new_prefix=30))
        try:
            for number, subnet in enumerate(subnets[:size], start=1):
                self.hosts.append(self._make_host(number, subnet))
        except BaseException:
            self.close()
            raise

    @property
    def server_addresses(self) -> list[str]:
        """The near ends' addresses: the server listens on them."""
        return [host.server_address for host in self.hosts]

    def _make_host(self, number: int, subnet: ipaddress.IPv4Network) -> Host:
        near, far = (str(address) for address in list(subnet.hosts())[:2])
        host = Host(
            name=f"host{number}",
            namespace=f"{NAMESPACE_PREFIX}{self.owner}-{self.number}-{number}",
            near_link=f"{LINK_PREFIX}{self.owner}l{self.number}h{number}",
            server_address=near,
            address=far,
        )
        _ip("ip", "netns", "add", host.namespace)
        try:
            ns = host.namespace
            _ip("ip", "link", "add", host.near_link, "type", "veth", "peer", "eth0", "netns", ns)
            _ip("ip", "addr", "add", f"{near}/{subnet.prefixlen}", "dev", host.near_link)
            _ip("ip", "link", "set", host.near_link, "up")
            _ip("ip", "-n", ns, "addr", "add", f"{far}/{subnet.prefixlen}", "dev", "eth0")
            _ip("ip", "-n", ns, "link", "set", "eth0", "up")
            _ip("ip", "-n", ns, "link", "set", "lo", "up")
        except BaseException:
            _remove_namespace(host.namespace)
            raise
        return host

    def heal_all(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(subprocess.CalledProcessError):
                host.heal()

    def kill_all(self) -> None:
        """Kill every process still running on any host."""
        for host in self.hosts:
            _kill(host.pids())

    def close(self) -> None:
        """Kill what runs on the hosts and delete them, links included."""
        for host in self.hosts:
            _remove_namespace(host.namespace)
        self.hosts = []


def remove_stale() -> list[str]:
    """Delete hosts and links of labs whose owner process is gone; their names."""
    removed = []
    for namespace in namespaces():
        owner = namespace[len(NAMESPACE_PREFIX) :].partition("-")[0]
        if owner.isdigit() and not alive(int(owner)):
            _remove_namespace(namespace)
            removed.append(namespace)
    # A near end whose namespace went while a process kept it alive outlives its name.
    for link in links():
        match = re.fullmatch(rf"{LINK_PREFIX}(\d+)l\d+h\d+", link)
        if match and not alive(int(match.group(1))):
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("ip", "link", "del", link)
            removed.append(link)
    return removed


def _free_network() -> ipaddress.IPv4Network:
    """A /24 of :data:`SUPERNET` that no address or route of the machine overlaps."""
    listed = _output("ip", "-4", "-o", "addr", "show")
    listed += _output("ip", "-4", "route", "show", "table", "all")
    found = re.findall(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", listed)
    used = [ipaddress.ip_network(address, strict=False) for address in found]
    candidates = list(SUPERNET.subnets(new_prefix=24))
    # Start where this process's pid points, so that two runs at once rarely collide.
    start = os.getpid() % len(candidates)
    for candidate in candidates[start:] + candidates[:start]:
        if not any(candidate.overlaps(network) for network in used if network.prefixlen >= 8):
            return candidate
    raise RuntimeError(f"no free /24 left in {SUPERNET}")


def _remove_namespace(namespace: str) -> None:
    _kill(_namespace_pids(namespace))
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("ip", "netns", "del", namespace)


def _kill(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)


def _namespace_pids(namespace: str) -> list[int]:
    try:
        return [int(pid) for pid in _output("ip", "netns", "pids", namespace).split()]
    except subprocess.CalledProcessError:
        return []


def namespaces() -> list[str]:
    """The names of every lab host on the machine (any run's)."""
    listed = _output("ip", "netns", "list").splitlines()
    return [line.split()[0] for line in listed if line.startswith(NAMESPACE_PREFIX)]


def links() -> list[str]:
    """The names of every near end of a lab link on the machine (any run's)."""
    listed = _output("ip", "-o", "link", "show").splitlines()
    names = [line.split(":")[1].strip().partition("@")[0] for line in listed if ":" in line]
    return [name for name in names if name.startswith(LINK_PREFIX)]


def _ip(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def _output(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout
