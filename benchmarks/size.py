"""djqueue on a big job table: drain, pick-up, pruning and a held-back vacuum, measured.

    .venv/bin/python benchmarks/size.py                       # 10 M finished + 1 M waiting
    .venv/bin/python benchmarks/size.py --quick               # minutes: 300 k + 30 k
    .venv/bin/python benchmarks/size.py --quick --finished 1000000 --waiting 100000

``--quick`` takes the small sizes and short phases of :data:`QUICK` for every option not
given on the command line (``benchmarks/scale.py --quick`` runs it so).

Two databases of its own: ``bench_size_empty`` (an empty job table) and
``bench_size_full`` (filled on the server with ``--finished`` jobs finished at
``--history-rate`` a second before the fill and ``--waiting`` waiting ones; kept between
runs with ``--keep``). Then, in one run:

1. drain and pick-up latency on each, in turns (empty, full, full, empty: a drift of
   the machine weighs on both), and their ratio;
2. on the full table, new history written at ``--history-rate`` jobs a second while
   pruning (djqueue's own, every ``--prune-every`` seconds) deletes what passed a
   retention set so that ``--backlog`` rows are past it at the start and the rest of the
   history crosses it at that same rate: whether pruning keeps up, its longest
   statement, and the table and its indexes before and after;
3. on the full table, no-op jobs sent at ``--xmin-rate`` a second to two workers, while a
   transaction holds a snapshot (and so vacuum's horizon) for ``--xmin-hold`` seconds,
   first in the queue's own database, then in another one of the same server: jobs
   finished per 10 s before, during and after each, and the backlog;
4. the cost per job of a finish, of pruning and of the vacuum after it, on a copy of
   ``--partition-rows`` jobs laid out as the job table is and on one partitioned by
   ``finished_at`` whose finished partition is dropped whole.

Every phase is bounded in time; workers are stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --quick: a small table and short phases, in minutes (options given still win).
QUICK: dict[str, Any] = {
    "finished": 300_000,
    "waiting": 30_000,
    "history_rate": 2_000,
    "backlog": 50_000,
    "prune_seconds": 30,
    "xmin_hold": 30,
    "xmin_around": 20,
    "xmin_rate": 500,
    "partition_rows": 20_000,
    "jobs": 5_000,
    "rounds": 1,
    "latency_jobs": 50,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes and short phases (see QUICK)")
    add("--finished", type=int, default=10_000_000, help="finished jobs in the full table")
    add("--waiting", type=int, default=1_000_000, help="waiting jobs in the full table")
    add("--history-rate", type=float, default=10_000, help="new history, jobs/s (10000)")
    add("--keep", action="store_true", help="reuse a full table filled by an earlier run")
    add("--jobs", type=int, default=20_000, help="jobs per drain (20000)")
    add("--rounds", type=int, default=2, help="drain and pick-up rounds per table (2)")
    add("--latency-jobs", type=int, default=200, help="pick-up samples (200)")
    add("--pool", default="threads", help="worker pool (threads)")
    add("--concurrency", type=int, default=4, help="slots per worker (4)")
    add("--backlog", type=int, default=1_000_000, help="rows past retention at the start")
    add("--prune-seconds", type=float, default=180, help="length of the pruning phase")
    add("--prune-every", type=float, default=10, help="seconds between prunes (10)")
    add("--xmin-rate", type=float, default=2_000, help="jobs/s sent in the xmin phase")
    add("--xmin-hold", type=float, default=180, help="seconds the snapshot is held (180)")
    add("--xmin-where", default="same,other", help="databases the snapshot is held in")
    add("--xmin-around", type=float, default=60, help="seconds measured before and after")
    add("--partition-rows", type=int, default=200_000, help="jobs per table, partitions")
    add(
        "--phases",
        default="drain,unscheduled,prune,xmin,partitions",
        help="which phases to run (drain,unscheduled,prune,xmin,partitions)",
    )
    add("--databases", default="bench_size", help="prefix of the two databases' names")
    add("--timeout", type=float, default=600, help="seconds per drain (600)")
    add("--json", type=Path, help="also write every figure to this file")
    options = parser.parse_args(argv)
    if options.quick:
        # As defaults, so that an option given on the command line keeps its value.
        parser.set_defaults(**QUICK)
        options = parser.parse_args(argv)
    return options


def main(argv: list[str] | None = None) -> int:
    """Fill, run the phases, print one table."""
    options = parse_args(argv)
    os.environ["DJQUEUE_BENCH_DB"] = f"{options.databases}_empty"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from benchmarks import size_load, size_partitions, size_phases

    size_phases.EMPTY, size_phases.FULL = f"{options.databases}_empty", f"{options.databases}_full"

    load = os.getloadavg()[0]
    figures: dict[str, Any] = {"load_at_start": load, "options": _plain(vars(options))}
    size_phases.prepare(options)
    vacuumer = None
    if not size_load.autovacuum_on():
        # A server without autovacuum (this project's test server runs so): its work
        # done here, when and at the pace autovacuum would, so that the figures are
        # those of a server with it.
        size_phases.say("-- autovacuum is off: the benchmark vacuums when it would")
        vacuumer = size_load.Vacuumer([size_phases.EMPTY, size_phases.FULL])
        vacuumer.start()
    figures["vacuum"] = "autovacuum" if vacuumer is None else "emulated (autovacuum off)"
    size_phases.VACUUMER = vacuumer
    phases = options.phases.split(",")
    if "drain" in phases:
        figures["drain"] = size_phases.drain_rounds(options)
    if "unscheduled" in phases:
        figures["drain, no scheduled jobs in the queue"] = (
            size_phases.drain_rounds_without_scheduled(options)
        )
    if "prune" in phases:
        figures["prune"] = size_phases.prune_phase(options)
    if "xmin" in phases:
        figures["xmin"] = size_phases.xmin_phase(options)
    if "partitions" in phases:
        size_phases.use(size_phases.FULL)
        size_phases.say("-- partitions: finish, prune and vacuum, per job")
        figures["partitions"] = size_partitions.measure(options.partition_rows)
    figures["load_at_end"] = os.getloadavg()[0]
    if vacuumer is not None:
        vacuumer.stop.set()
        vacuumer.join(timeout=5)  # a vacuum under way is left to finish
        if vacuumer.error:
            raise vacuumer.error
    print(report(figures, options))
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    ok = all(found.get("drain_ok", True) for found in figures.get("drain", {}).get("rounds", []))
    return 0 if ok else 1


def report(figures: dict[str, Any], options: argparse.Namespace) -> str:
    """The figures as plain-text tables."""

    lines = [
        f"\n{options.finished:,} finished + {options.waiting:,} waiting jobs; "
        f"{os.cpu_count()} CPUs; 1-minute load {figures['load_at_start']:.2f} at the start, "
        f"{figures['load_at_end']:.2f} at the end; vacuum: {figures['vacuum']}"
    ]
    for title in ("drain", "drain, no scheduled jobs in the queue"):
        lines += _drain_table(title, figures.get(title))
    prune = figures.get("prune")
    if prune:
        lines += ["", "pruning while new history arrives"]
        lines += [f"  {key:<32} {_shown(value)}" for key, value in prune.items()]
    xmin = figures.get("xmin")
    if xmin:
        lines += [
            "",
            f"jobs sent at {options.xmin_rate:,.0f}/s, snapshot held {options.xmin_hold:g}s",
        ]
        lines += [f"  {key:<42} {_shown(value)}" for key, value in xmin.items() if key != "windows"]
        lines += ["  jobs finished per 10 s:"]
        lines += [
            f"    {start:>5.0f}s {label:<24} {done:>8,} backlog {backlog:>9,}"
            for start, label, done, backlog in xmin["windows"]
        ]
    partitions = figures.get("partitions")
    if partitions:
        lines += ["", f"{'per finished job':<40} {'µs':>8} {'WAL bytes':>10}"]
        lines += [
            f"{step:<40} {cost['µs per job']:>8,.1f} {cost['WAL bytes per job']:>10,.0f}"
            for step, cost in partitions.items()
        ]
    return "\n".join(lines)


def _drain_table(title: str, drain: dict[str, Any] | None) -> list[str]:
    from benchmarks import size_phases

    if not drain:
        return []
    lines = ["", f"{title:<34} {'empty':>10} {'full':>10} {'full/empty':>11}"]
    for key, label in (
        ("drain", "drain (jobs/s)"),
        ("pickup_p50_ms", "pick-up p50 (ms)"),
        ("pickup_p99_ms", "pick-up p99 (ms)"),
    ):
        medians = drain["median"]
        empty, full = medians[size_phases.EMPTY][key], medians[size_phases.FULL][key]
        lines.append(f"{label:<34} {empty:>10,.2f} {full:>10,.2f} {full / empty:>10.2f}x")
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


if __name__ == "__main__":
    sys.exit(main())
