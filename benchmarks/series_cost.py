"""What the console's time series costs the hot path: the drain rate of this checkout
beside that of another, side by side, in turns.

Each round drains the same N queued no-op jobs with real ``runworker`` processes, once
with each checkout (ABBA order, so that a drift of the machine weighs on both), each in
a database of its own. This checkout's workers roll up every ``--rollup-seconds`` (1 by
default: thirty times as often as the default, so that rollups and depth samples happen
all through each drain, and the minutes of one round's jobs are rolled up during the
next). The baseline's roll up as its settings say, or every
``--baseline-rollup-seconds``; ``off`` turns its series off. Prints each drain and the
medians.

    # against the code before the time series
    .venv/bin/python benchmarks/series_cost.py --baseline ../djqueue-before --rounds 6
    # this checkout with its series off: what the series costs
    .venv/bin/python benchmarks/series_cost.py --baseline . --baseline-rollup-seconds off
    # against an earlier rollup, both rolling up every second
    .venv/bin/python benchmarks/series_cost.py --baseline ../djqueue-earlier \
        --baseline-rollup-seconds 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# Run as a script, the repository root (where ``benchmarks`` lives) may not be on the path.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from benchmarks import common  # noqa: E402

# Run inside a checkout: its own code, its own database.
ONE_DRAIN = """
import json, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
django.setup()
from benchmarks import djqueue_side as side
side.prepare_database()
side.enqueue_bulk({jobs})
figures = side.drain({jobs}, side.WorkerSpec({workers}, {pool!r}, {concurrency}), 600)
# What one rollup read of the drained jobs takes (their minutes rewritten; median of 3).
import time
from django.db import connection
from djqueue.db import series
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT date_trunc('minute', min(finished_at)), "
        "date_trunc('minute', max(finished_at)) + interval '1 minute' FROM djqueue_job"
    )
    start, end = cursor.fetchone()
taken = []
for _ in range(3):
    began = time.perf_counter()
    series.rewrite_minutes(start, end)
    taken.append(time.perf_counter() - began)
figures["read_seconds"] = sorted(taken)[1]
print("RESULT " + json.dumps(figures))
"""


def drain(
    tree: Path, name: str, options: argparse.Namespace, rollup: str | None
) -> tuple[float, float]:
    """One drain in ``tree``: its rate, and the seconds one rollup read of its jobs took."""
    extra = {"DJQUEUE_BENCH_ROLLUP_SECONDS": rollup} if rollup is not None else {}
    env = common.checkout_env(tree, f"{options.database_prefix}_{name}", **extra)
    code = ONE_DRAIN.format(
        jobs=options.jobs,
        workers=options.workers,
        pool=options.pool,
        concurrency=options.concurrency,
    )
    output = common.run_in(tree, [sys.executable, "-c", code], env)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"the drain in {tree} gave no figures:\n{output}")
    figures = json.loads(lines[-1][len("RESULT ") :])
    if not figures["drain_ok"]:
        raise SystemExit(f"the drain in {tree} did not run every job exactly once: {figures}")
    return float(figures["drain"]), float(figures["read_seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rollup-seconds", default="1", help="seconds, or off")
    parser.add_argument("--database-prefix", default="djqueue_bench", help="of both databases")
    parser.add_argument("--baseline-rollup-seconds", help="seconds, or off (default: its own)")
    options = parser.parse_args(argv)
    rates: dict[str, list[float]] = {"before": [], "series": []}
    reads: list[float] = []
    for round_, name in common.in_turns(options.rounds, "before", "series"):
        tree = options.baseline.resolve() if name == "before" else HERE
        rollup = options.rollup_seconds if name == "series" else options.baseline_rollup_seconds
        rate, read = drain(tree, name, options, rollup)
        rates[name].append(rate)
        if name == "series":
            reads.append(read)
        print(f"round {round_ + 1} {name:>6}: {rate:,.0f} jobs/s", flush=True)
    before, after = statistics.median(rates["before"]), statistics.median(rates["series"])
    baseline_rollup = options.baseline_rollup_seconds or "its default"
    print(
        f"\nmedian drain, {options.jobs} jobs, {options.workers} x {options.pool} "
        f"c={options.concurrency}: baseline (rollup: {baseline_rollup}) {before:,.0f} jobs/s, "
        f"this checkout (rollup: {options.rollup_seconds}) {after:,.0f} jobs/s: "
        f"{-common.change(before, after):+.1%} slower"
    )
    # The rollup reads each job once, in its own statement: its share of the machine
    # time a job takes in this checkout's drain (every core, for the drain's duration).
    per_job = statistics.median(reads) / options.jobs
    machine = (os.cpu_count() or 1) / after
    print(
        f"one rollup read of the drained jobs: {per_job * 1e6:.2f} us per job, "
        f"{per_job / machine:.1%} of the {machine * 1e6:.0f} us of machine time "
        f"({os.cpu_count()} cores) a job takes in this checkout's drain"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
