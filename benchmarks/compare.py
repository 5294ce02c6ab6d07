"""Every figure of bench.py for this checkout beside another (the code before a change),
side by side, in turns.

Each round runs ``benchmarks/bench.py`` in its per-pool mode once with each checkout
(ABBA order, so that a drift of the machine weighs on both), each in a database of its
own, made anew at the start: enqueue one by one, bulk enqueue, and for every pool of
``--pools`` a drain and the pick-up latency (p50, p99). Prints, per figure, the median
before and after and the change, and marks a figure more than 5 % worse; the exit
status is 1 when one is.

    git worktree add --detach ../djqueue-before <commit before the change>
    .venv/bin/python benchmarks/compare.py --baseline ../djqueue-before --rounds 4

The baseline needs a ``benchmarks/bench.py`` with ``--pools`` and ``--json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
# Run as a script, the repository root (where ``benchmarks`` lives) may not be on the path.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from benchmarks import common  # noqa: E402

BEFORE, AFTER = "before", "after"
# A figure this much worse than before (slower rate, longer latency) is marked.
TOLERANCE = 0.05


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline", type=Path, required=True, help="the other checkout (the code before)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="runs of each checkout (4)")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per phase (20000)")
    parser.add_argument("--workers", type=int, default=2, help="runworker processes (2)")
    parser.add_argument(
        "--pools", default="solo,threads,prefork", help="pools to drain (solo,threads,prefork)"
    )
    parser.add_argument("--pool-concurrency", help="as bench.py's, e.g. gevent=50,threads=8")
    parser.add_argument(
        "--latency-jobs", type=int, default=200, help="jobs sent one at a time (200)"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds per phase (300)")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    options = parser.parse_args(argv)
    if not (options.baseline / "benchmarks" / "bench.py").exists():
        parser.error(f"{options.baseline} is not a djqueue checkout with benchmarks/bench.py")
    return options


def database(side: str) -> str:
    """The benchmark database of one side."""
    return f"djqueue_bench_{side}"


def bench(tree: Path, side: str, options: argparse.Namespace) -> dict[str, float]:
    """One run of ``tree``'s bench.py: figure label -> value."""
    with tempfile.TemporaryDirectory() as folder:
        found = Path(folder) / "figures.json"
        command = [
            sys.executable,
            str(tree / "benchmarks" / "bench.py"),
            *("--jobs", str(options.jobs), "--workers", str(options.workers)),
            *("--pools", options.pools, "--latency-jobs", str(options.latency_jobs)),
            *("--timeout", str(options.timeout), "--json", str(found)),
        ]
        if options.pool_concurrency:
            command += ["--pool-concurrency", options.pool_concurrency]
        # bench.py exits non-zero when a drain did not run every job exactly once.
        common.run_in(tree, command, common.checkout_env(tree, database(side)))
        return figures(json.loads(found.read_text())["djqueue"])


def figures(djqueue: dict[str, Any]) -> dict[str, float]:
    """The figures of a per-pool run of bench.py, by label, in the order it shows them."""
    found = {
        "enqueue one by one (jobs/s)": float(djqueue["enqueue_one"]),
        "bulk enqueue (jobs/s)": float(djqueue["enqueue_bulk"]),
    }
    for pool, ran in djqueue["pools"].items():
        found[f"{pool}: drain, {ran['spec']} (jobs/s)"] = float(ran["drain"])
        found[f"{pool}: pick-up latency p50 (ms)"] = float(ran["latency_p50_ms"])
        found[f"{pool}: pick-up latency p99 (ms)"] = float(ran["latency_p99_ms"])
    return found


def lower_is_better(label: str) -> bool:
    """Latencies (in ms) are better lower; rates higher."""
    return label.endswith("(ms)")


def worse(label: str, before: float, after: float) -> bool:
    """Whether ``after`` is more than TOLERANCE worse than ``before``."""
    moved = common.change(before, after)
    return moved > TOLERANCE if lower_is_better(label) else moved < -TOLERANCE


def table(runs: dict[str, list[dict[str, float]]]) -> tuple[str, bool]:
    """Median before and after of every figure, the change, and whether any is worse."""
    rows = [("figure", BEFORE, AFTER, "change", "")]
    any_worse = False
    for label in runs[AFTER][0]:
        before = statistics.median(run[label] for run in runs[BEFORE])
        after = statistics.median(run[label] for run in runs[AFTER])
        marked = worse(label, before, after)
        any_worse |= marked
        moved = f"{common.change(before, after):+.1%}"
        verdict = f"WORSE by more than {TOLERANCE:.0%}" if marked else ""
        rows.append((label, _fmt(before, label), _fmt(after, label), moved, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines), any_worse


def _fmt(value: float, label: str) -> str:
    return f"{value:,.2f}" if lower_is_better(label) else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    """Run both checkouts in turns and print the comparison; 1 when a figure is worse."""
    options = parse_args(argv)
    trees = {BEFORE: options.baseline.resolve(), AFTER: HERE}
    for side in trees:
        # Each side migrates its own database from nothing, with its own migrations.
        common.drop_database(database(side))
    runs: dict[str, list[dict[str, float]]] = {BEFORE: [], AFTER: []}
    for round_, side in common.in_turns(options.rounds, BEFORE, AFTER):
        print(f"round {round_ + 1}: {side} ({trees[side]})", file=sys.stderr, flush=True)
        runs[side].append(bench(trees[side], side, options))
    missing = set(runs[AFTER][0]) - set(runs[BEFORE][0])
    if missing:
        raise SystemExit(f"the baseline's bench.py does not give {', '.join(sorted(missing))}")
    shown, any_worse = table(runs)
    print(
        f"\nmedians of {options.rounds} run(s) each, {options.jobs} jobs per phase, "
        f"{options.workers} worker processes per pool; before: {trees[BEFORE]}\n"
    )
    print(shown)
    if options.json:
        options.json.write_text(json.dumps({"rounds": runs}, indent=2) + "\n")
    return 1 if any_worse else 0


if __name__ == "__main__":
    sys.exit(main())
