"""Worker processes of any pool, kept at a number: the test kills, the fleet replaces.

Every exit is recorded with its code and whether the test caused it, so that a test can
tell the exits it caused (kill -9) from exits caused by a job.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.acceptance.conftest import WorkerProcess, Workers

POOLS = ("solo", "threads", "prefork", "gevent")
# Concurrency per pool: modest, the machine has two cores.
CONCURRENCY = {"solo": 1, "threads": 4, "prefork": 2, "gevent": 20}
GEVENT_ENTRY = ("-m", "djqueue.gevent_worker")
# What a worker logs once it serves (gevent's entry point says which pool, too).
READY = (" ready: pool=", " ready: pool=gevent")


def pool_params(smoke: str) -> list[object]:
    """The four pools as test parameters, each built-in pool but ``smoke`` at full size only.

    The smoke run (the default suite) runs a per-pool scenario on one built-in pool,
    ``smoke``, each scenario on another, and on gevent where it is installed (``tox -e
    gevent`` runs those): the acceptance tests already go through kill, poison and freeze
    in every pool, and the full run (``--chaos-full``) runs every scenario in every pool.
    gevent is skipped when it is not installed.
    """
    missing = importlib.util.find_spec("gevent") is None
    gevent = pytest.param(
        "gevent",
        marks=pytest.mark.skipif(missing, reason="gevent is not installed (extra: gevent)"),
    )
    built_in = [
        pool if pool == smoke else pytest.param(pool, marks=pytest.mark.chaos(full=True))
        for pool in POOLS[:3]
    ]
    return [*built_in, gevent]


def start_worker(
    workers: Workers,
    pool: str,
    *args: str,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    prefix: str = "w",
) -> WorkerProcess:
    """Start a worker of ``pool`` (gevent through its patching entry point)."""
    options = ("-c", str(CONCURRENCY[pool]), *args)
    if pool == "gevent":
        return workers.start(
            *options,
            env=env,
            wait_ready=wait_ready,
            entry=GEVENT_ENTRY,
            prefix=prefix,
            ready=READY[True],
        )
    return workers.start("-P", pool, *options, env=env, wait_ready=wait_ready, prefix=prefix)


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (a prefork worker's children), from /proc."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += family(int(child))
    return found


def signal_family(worker: WorkerProcess, signum: int) -> None:
    """Send ``signum`` to the worker and all its descendants, children first."""
    for pid in reversed(family(worker.pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@dataclass(frozen=True)
class Exit:
    """A worker process that ended."""

    hostname: str
    code: int
    by_test: bool

    def __str__(self) -> str:
        if self.code >= 0:
            return f"{self.hostname}: exit {self.code}"
        try:
            return f"{self.hostname}: {signal.Signals(-self.code).name}"
        except ValueError:
            return f"{self.hostname}: signal {-self.code}"


@dataclass
class Fleet:
    """``size`` workers of ``pool`` with ``args``; dead ones are replaced by :meth:`keep`."""

    workers: Workers
    pool: str
    size: int
    args: tuple[str, ...] = ()
    alive: list[WorkerProcess] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    _killed: set[int] = field(default_factory=set)

    def start(self) -> None:
        """Start the first ``size`` workers and wait until each is ready."""
        for _ in range(self.size):
            self.alive.append(start_worker(self.workers, self.pool, *self.args, wait_ready=False))
        for worker in self.alive:  # they start up side by side
            worker.wait_for_log(READY[self.pool == "gevent"])

    def keep(self) -> list[Exit]:
        """Record workers that ended and start replacements; return the new exits."""
        ended = [worker for worker in self.alive if worker.process.poll() is not None]
        new = []
        for worker in ended:
            self.alive.remove(worker)
            code = worker.process.returncode
            new.append(Exit(worker.hostname, code, worker.pid in self._killed))
            # Not waited for: a replacement that dies at once shows at the next call.
            self.alive.append(start_worker(self.workers, self.pool, *self.args, wait_ready=False))
        self.exits += new
        return new

    def kill_one(self, chance: random.Random) -> WorkerProcess:
        """kill -9 one worker chosen at random (its children die with it)."""
        victim = chance.choice(self.alive)
        self._killed.add(victim.pid)
        victim.send(signal.SIGKILL)
        victim.wait_exit(10)
        return victim

    def not_by_test(self) -> list[Exit]:
        """Exits the test did not cause."""
        return [done for done in self.exits if not done.by_test]
