"""Sustained load, the part every system shares: an open-loop producer at stepped rates,
CPU time read from ``/proc``, and the verdict on each step.

Imported by both sides of ``sustained.py``: djqueue's (this virtualenv) and the peers'
(the benchmark virtualenv of Celery and procrastinate), so it imports neither Django
nor psycopg.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from benchmarks import common

# A step passes when its p99 pick-up is under this and the backlog stays bounded.
PICKUP_P99_LIMIT_MS = 50.0
# Bounded: what waits when the producer stops is at most this many seconds of work.
BACKLOG_LIMIT_SECONDS = 1.0
# The producer sends at most this many jobs in one call when it has fallen behind.
MAX_BATCH = 500
# A producer this far behind its schedule at a step's end did not offer the rate.
PRODUCER_BEHIND_LIMIT_SECONDS = 1.0

QUICK_RATES = (100, 500, 1000, 2000, 4000)
FULL_RATES = (500, 1000, 2000, 4000, 6000, 8000, 10000, 12000, 16000, 20000)

# How long a backend may keep its commit counts before reporting them.
STATS_SETTLE_SECONDS = 1.2

_TICKS = os.sysconf("SC_CLK_TCK")


class System(Protocol):
    """What ``run_steps`` needs from one system under test."""

    name: str

    def send(self, scheduled: Sequence[float]) -> None:
        """Send one job per entry, each carrying its scheduled send time (epoch s)."""

    def finished(self) -> int:
        """Jobs of the current step that have run."""

    def pickups_ms(self) -> tuple[list[float], int]:
        """(pick-up delays in ms of the step's jobs that ran, how many have not run)."""

    def reset(self) -> None:
        """Forget the step's jobs (workers idle), ready for the next step."""

    def worker_pids(self) -> list[int]:
        """The worker processes (their children are counted too)."""

    def server_pids(self) -> list[int]:
        """The broker's processes serving this system (PostgreSQL backends, Redis...)."""

    def counters(self) -> dict[str, float]:
        """Monotonic server counters (``wal_bytes``, ``commits``), or {} when none."""


@dataclass
class Sent:
    """What the producer did in one step."""

    jobs: int
    seconds: float
    behind: float  # seconds behind schedule when the step ended


def open_loop(rate: float, hold: float, send: Callable[[Sequence[float]], None]) -> Sent:
    """Send ``rate`` jobs/s for ``hold`` seconds on a fixed schedule, whatever the
    consumers do (an open loop): jobs whose time has come go out together, one call
    per round, so a slow send makes the next round bigger rather than the rate lower."""
    total = int(rate * hold)
    start = time.time()
    index = 0
    while index < total:
        now = time.time()
        due = min(total, int((now - start) * rate) + 1)
        if due > index:
            count = min(due - index, MAX_BATCH)
            send([start + (index + k) / rate for k in range(count)])
            index += count
            continue
        time.sleep(max(0.0, start + index / rate - time.time()))
    ended = time.time()
    behind = max(0.0, ended - (start + total / rate))
    return Sent(total, ended - start, behind)


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of ``pids`` and of all their living descendants."""
    return sum(_own_cpu(pid) for pid in _with_descendants(set(pids)))


def _own_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    # After the command: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _with_descendants(roots: set[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            parents[int(entry.name)] = int(fields[1])
    found = set(roots)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def pids_named(command: str) -> list[int]:
    """Processes whose command name (``/proc/<pid>/comm``) is ``command``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def run_steps(
    system: System, rates: Sequence[float], hold: float, grace: float, all_steps: bool = False
) -> list[dict[str, Any]]:
    """Each rate in turn, until one fails (or all, with ``all_steps``): the figures of
    every step run."""
    results = []
    for rate in rates:
        step = run_step(system, rate, hold, grace)
        results.append(step)
        print(f"-- {system.name} {rate:.0f}/s: {summary(step)}", flush=True, file=_err())
        if not step["passed"] and not all_steps:
            break
    return results


def run_step(system: System, rate: float, hold: float, grace: float) -> dict[str, Any]:
    """One step: send at ``rate`` for ``hold`` s, then wait up to ``grace`` s for the
    rest to run; the verdict and the costs per job."""
    system.reset()
    workers, servers = system.worker_pids(), system.server_pids()
    cpu_before = (cpu_seconds(workers), cpu_seconds(servers))
    counters_before = system.counters()
    sent = open_loop(rate, hold, system.send)
    backlog = sent.jobs - system.finished()
    common.wait_until(lambda: system.finished() >= sent.jobs, grace, 0.05)
    if counters_before:
        # Backends report their commits to the statistics at most once a second.
        time.sleep(STATS_SETTLE_SECONDS)
    counters_after = system.counters()
    cpu_after = (cpu_seconds(workers), cpu_seconds(servers))
    delays, not_run = system.pickups_ms()
    ran = len(delays)
    # A job that has not run by now is later than any that did.
    ordered = sorted(delays) + [float("inf")] * not_run
    p50 = common.percentile(ordered, 0.50) if ordered else float("inf")
    p99 = common.percentile(ordered, 0.99) if ordered else float("inf")
    per_job = max(ran, 1)
    found: dict[str, Any] = {
        "rate": rate,
        "sent": sent.jobs,
        "ran": ran,
        "offered_rate": sent.jobs / sent.seconds if sent.seconds else 0.0,
        "producer_behind_s": sent.behind,
        "backlog_at_end": backlog,
        "pickup_p50_ms": p50,
        "pickup_p99_ms": p99,
        "cpu_workers_per_1000": (cpu_after[0] - cpu_before[0]) / per_job * 1000,
        "cpu_server_per_1000": (cpu_after[1] - cpu_before[1]) / per_job * 1000,
    }
    for key in ("wal_bytes", "commits"):
        if key in counters_before and key in counters_after:
            found[f"{key}_per_job"] = (counters_after[key] - counters_before[key]) / per_job
    bounded = backlog <= max(1.0, rate * BACKLOG_LIMIT_SECONDS)
    kept_up = sent.behind <= PRODUCER_BEHIND_LIMIT_SECONDS
    found["passed"] = bounded and kept_up and p99 <= PICKUP_P99_LIMIT_MS and not_run == 0
    found["why"] = ", ".join(
        why
        for why, failed in (
            ("producer fell behind", not kept_up),
            (f"backlog {backlog}", not bounded),
            (f"p99 {p99:.0f} ms", p99 > PICKUP_P99_LIMIT_MS),
            (f"{not_run} not run", not_run > 0),
        )
        if failed
    )
    return found


def best(steps: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest passing step (the one whose costs the summary shows)."""
    passed = [step for step in steps if step["passed"]]
    return max(passed, key=lambda step: step["rate"]) if passed else None


def shown(steps: Sequence[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    """The step whose figures a table shows: the highest passing one (True), or when
    none passed the first one run (False)."""
    top = best(steps)
    if top is not None:
        return top, True
    return (steps[0], False) if steps else (None, False)


def summary(step: dict[str, Any]) -> str:
    """One line about a step, for progress output."""
    verdict = "ok" if step["passed"] else f"FAILED ({step['why']})"
    return (
        f"p50 {step['pickup_p50_ms']:.1f} ms, p99 {step['pickup_p99_ms']:.1f} ms, "
        f"backlog {step['backlog_at_end']}, CPU/1000 jobs {step['cpu_workers_per_1000']:.2f}"
        f"+{step['cpu_server_per_1000']:.2f} s: {verdict}"
    )


def _err() -> Any:
    import sys

    return sys.stderr
