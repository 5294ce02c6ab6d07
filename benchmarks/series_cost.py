"""What the console's time series costs the hot path: the drain rate of this checkout
beside that of another (the code before the time series), side by side, in turns.

Each round drains the same N queued no-op jobs with real ``runworker`` processes, once
with each checkout (ABBA order, so that a drift of the machine weighs on both), each in
a database of its own. This checkout's workers roll up every ``--rollup-seconds`` (1 by
default: thirty times as often as the default, so that rollups and depth samples happen
all through each drain, and the minutes of one round's jobs are rolled up during the
next). Prints each drain and the medians.

    .venv/bin/python benchmarks/series_cost.py --baseline ../djqueue-before --rounds 6
"""

from __future__ import annotations

import argparse
import json
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
print("RESULT " + json.dumps(figures))
"""


def drain(tree: Path, name: str, options: argparse.Namespace, rollup: float | None) -> float:
    extra = {"DJQUEUE_BENCH_ROLLUP_SECONDS": str(rollup)} if rollup is not None else {}
    env = common.checkout_env(tree, f"djqueue_bench_{name}", **extra)
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
    return float(figures["drain"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rollup-seconds", type=float, default=1.0)
    options = parser.parse_args(argv)
    rates: dict[str, list[float]] = {"before": [], "series": []}
    for round_, name in common.in_turns(options.rounds, "before", "series"):
        tree = options.baseline.resolve() if name == "before" else HERE
        rollup = options.rollup_seconds if name == "series" else None
        rate = drain(tree, name, options, rollup)
        rates[name].append(rate)
        print(f"round {round_ + 1} {name:>6}: {rate:,.0f} jobs/s", flush=True)
    before, after = statistics.median(rates["before"]), statistics.median(rates["series"])
    print(
        f"\nmedian drain, {options.jobs} jobs, {options.workers} x {options.pool} "
        f"c={options.concurrency}: before {before:,.0f} jobs/s, with the time series "
        f"(rollup every {options.rollup_seconds:g} s) {after:,.0f} jobs/s: "
        f"{-common.change(before, after):+.1%} slower"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
