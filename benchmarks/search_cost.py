"""What the job list's search index costs ``delay()``: enqueue rates with the index
and without it, side by side, in turns.

Each round sends N jobs one by one with ``noop.delay(i)`` (each its own transaction, as
a web request would) into an emptied job table, once with the search index of
migration 0023 (the partial ``djqueue_job_error_search``, which an enqueue never writes;
the index on arguments it made too was dropped by migration 0027, see
docs/monitoring.md#search) and once with it dropped, in ABBA order so that a drift of
the machine weighs on both. It runs in a database of
its own (``djqueue_bench_search``) and prints each round and the medians.

    .venv/bin/python benchmarks/search_cost.py --jobs 20000 --rounds 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATABASE = "djqueue_bench_search"
INDEXES = ("djqueue_job_error_search",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    options = parser.parse_args(argv)
    os.environ["DJQUEUE_BENCH_DB"] = DATABASE
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from benchmarks import djqueue_side as side

    side.prepare_database()
    definitions = _definitions()
    rates: dict[str, list[float]] = {"with": [], "without": []}
    try:
        for round_ in range(options.rounds):
            order = ["with", "without"] if round_ % 2 == 0 else ["without", "with"]
            for name in order:
                _set_indexes(definitions, present=name == "with")
                rate = float(side.enqueue_one_by_one(options.jobs)["enqueue_one"])
                rates[name].append(rate)
                print(f"round {round_ + 1} {name:>7} the indexes: {rate:,.0f} jobs/s", flush=True)
    finally:
        _set_indexes(definitions, present=True)
    with_, without = statistics.median(rates["with"]), statistics.median(rates["without"])
    print(
        f"\nmedian delay() rate, {options.jobs} jobs one by one: without the search indexes "
        f"{without:,.0f} jobs/s, with them {with_:,.0f} jobs/s: "
        f"{(without - with_) / without:+.1%} slower"
    )
    return 0


def _definitions() -> dict[str, str]:
    """The search indexes' CREATE INDEX statements, as the migration made them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [list(INDEXES)]
        )
        found = dict(cursor.fetchall())
    missing = set(INDEXES) - set(found)
    if missing:
        raise SystemExit(f"the search indexes {sorted(missing)} are missing: is 0023 applied?")
    return found


def _set_indexes(definitions: dict[str, str], present: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name, definition in definitions.items():
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
            if present:
                cursor.execute(definition)


if __name__ == "__main__":
    sys.exit(main())
