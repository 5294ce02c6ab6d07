"""Drain and pick-up latency through PgBouncer in transaction mode beside a direct
connection, in one run.

A private PgBouncer (Debian's ``pgbouncer`` program, its own ini in a temporary
directory, a free port, ``pool_mode = transaction``) is started in front of the server;
``bench.py`` then runs in turns (ABBA: direct, pooled, pooled, direct, ... for
``--rounds``) once with ``DATABASES`` pointing at the server and once at PgBouncer with
``LISTEN_DSN`` straight to the server, as docs/installation.md sets a project up::

    .venv/bin/python benchmarks/pooler.py --jobs 20000 --rounds 2

The medians of each side are printed; ``--json`` keeps every run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402

# The test suite's private PgBouncer (transaction mode, its own ini, as postgres when root).
from tests.acceptance.pgbouncer import PgBouncer, program  # noqa: E402

DATABASE = "djqueue_bench_pooler"
FIGURES = (
    ("enqueue_one", "enqueue one by one, delay() (jobs/s)", "/s"),
    ("drain", "drain (jobs/s)", "/s"),
    ("latency_p50_ms", "pick-up latency p50 (ms)", "ms"),
    ("latency_p99_ms", "pick-up latency p99 (ms)", "ms"),
)


def bench(options: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """One ``bench.py`` run with ``env``; its djqueue figures."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            sys.executable,
            str(ROOT / "benchmarks" / "bench.py"),
            "--jobs",
            str(options.jobs),
            "--workers",
            str(options.workers),
            "--pool",
            "threads",
            "--concurrency",
            str(options.concurrency),
            "--latency-jobs",
            str(options.latency_jobs),
            "--json",
            out.name,
        ]
        common.run_in(ROOT, command, env)
        return dict(json.loads(Path(out.name).read_text())["djqueue"])


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Both sides in turns; every run's figures."""
    host = os.environ.get("PGHOST", "127.0.0.1")
    port = int(os.environ.get("PGPORT", "5432"))
    direct_dsn = f"host={host} port={port} user=postgres dbname={DATABASE}"
    base = {**common.child_env(), "DJQUEUE_BENCH_DB": DATABASE}
    base.pop("DJQUEUE_BENCH_LISTEN_DSN", None)
    bouncer = PgBouncer((host, port), options.pool_size)
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "pgbouncer": []}
    try:
        bouncer.start()
        pooled = {
            **base,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(bouncer.port),
            "DJQUEUE_BENCH_LISTEN_DSN": direct_dsn,
        }
        sides = {"direct": base, "pgbouncer": pooled}
        # The direct side first: it creates and migrates the database.
        for round_, side in common.in_turns(options.rounds, "direct", "pgbouncer"):
            print(f"-- pooler: round {round_ + 1}, {side}", file=sys.stderr, flush=True)
            runs[side].append(bench(options, sides[side]))
    finally:
        bouncer.stop()
    return runs


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The median of each figure over ``runs``."""
    return {key: statistics.median(run[key] for run in runs) for key, _, _ in FIGURES}


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """The medians side by side."""
    direct, pooled = medians(runs["direct"]), medians(runs["pgbouncer"])
    rows = [("figure", "direct", "PgBouncer", "PgBouncer/direct")]
    for key, label, unit in FIGURES:
        shown = [f"{v:,.2f}" if unit == "ms" else f"{v:,.0f}" for v in (direct[key], pooled[key])]
        ratio = pooled[key] / direct[key] if direct[key] else float("nan")
        rows.append((label, *shown, f"{ratio:.2f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Run both sides and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain (20000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker (4)")
    parser.add_argument("--latency-jobs", type=int, default=200, help="samples (200)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each side (1)")
    parser.add_argument("--pool-size", type=int, default=4, help="PgBouncer pool size (4)")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    options = parser.parse_args(argv)
    if program() is None:
        print("pgbouncer not found (apt-get install pgbouncer)", file=sys.stderr)
        return 2
    started, load_average = time.time(), os.getloadavg()[0]
    runs = run(options)
    print(
        f"\nThrough PgBouncer (transaction mode, pool size {options.pool_size}, LISTEN "
        f"direct) and direct, {options.rounds} run(s) each, medians; {options.jobs} jobs, "
        f"{options.workers} x threads c={options.concurrency}; load average at the start "
        f"{load_average:.1f}; {time.time() - started:.0f} s\n"
    )
    print(table(runs))
    if options.json:
        options.json.write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
