"""The steps of ``size.py``: making its two databases, and its three phases."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import psycopg
from django.core.management import call_command
from django.db import connection

from benchmarks import djqueue_side, size_fill, size_load

EMPTY, FULL = "bench_size_empty", "bench_size_full"
# size.py's stand-in for autovacuum on a server without it (None: the server's own).
VACUUMER: size_load.Vacuumer | None = None

# What the fill made, so that --keep knows whether the full table is the one asked for.
META = "CREATE TABLE IF NOT EXISTS bench_size_meta (at float8, finished bigint, waiting bigint)"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def use(database: str) -> None:
    """Point this process and the workers it starts at ``database``."""
    connection.close()
    connection.settings_dict["NAME"] = database
    os.environ["DJQUEUE_BENCH_DB"] = database


def prepare(options: argparse.Namespace) -> float:
    """Make both databases (the full one filled, unless --keep finds it filled as asked);
    return the moment the full table's history ends."""
    for database in (EMPTY, FULL):
        if database == EMPTY or not options.keep:
            _recreate(database)
        use(database)
        call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(META)
        cursor.execute("SELECT at, finished, waiting FROM bench_size_meta")
        made = cursor.fetchone()
        if made and (made[1], made[2]) == (options.finished, options.waiting):
            say(f"-- reusing {FULL}")
            return float(made[0])
        say(f"-- filling {FULL}")
        cursor.execute("TRUNCATE djqueue_job, bench_size_meta")
        at = size_fill.fill(cursor, options.finished, options.waiting, options.history_rate, say)
        cursor.execute(
            "INSERT INTO bench_size_meta VALUES (%s, %s, %s)",
            [at, options.finished, options.waiting],
        )
    return at


def _recreate(database: str) -> None:
    from benchmarks import common

    common.drop_database(database)
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{database}"')


def drain_rounds(options: argparse.Namespace) -> dict[str, Any]:
    """Drain and pick-up on the empty and the full table in turns (ABBA)."""
    spec = djqueue_side.WorkerSpec(2, options.pool, options.concurrency)
    rounds: dict[str, list[dict[str, Any]]] = {EMPTY: [], FULL: []}
    for round_, database in _turns(options.rounds):
        say(f"-- round {round_ + 1}: drain and pick-up on {database}")
        use(database)
        found = size_load.drain(options.jobs, spec, options.timeout)
        found.update(size_load.pick_up(options.latency_jobs, spec, options.timeout))
        rounds[database].append(found)
    return {
        "median": {database: median_of(found) for database, found in rounds.items()},
        "rounds": [found for both in rounds.values() for found in both],
    }


def drain_rounds_without_scheduled(options: argparse.Namespace) -> dict[str, Any]:
    """The drain and pick-up rounds again, with the full table's jobs scheduled for
    later moved out of the benchmark's queue (to one no worker serves)."""
    use(FULL)
    say("-- moving the scheduled jobs out of the drained queue")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE djqueue_job SET queue = 'later' "
            "WHERE queue = 'default' AND state = 'PENDING' AND eta > now() + interval '1 hour'"
        )
        cursor.execute("VACUUM ANALYZE djqueue_job")
    return drain_rounds(options)


def median_of(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """Each figure's median over ``rounds``."""
    keys = [key for key in rounds[0] if isinstance(rounds[0][key], float)]
    return {key: statistics.median(found[key] for found in rounds) for key in keys}


def _turns(rounds: int) -> list[tuple[int, str]]:
    order = []
    for round_ in range(rounds):
        pair = (EMPTY, FULL) if round_ % 2 == 0 else (FULL, EMPTY)
        order += [(round_, database) for database in pair]
    return order


def prune_phase(options: argparse.Namespace) -> dict[str, Any]:
    """New history at the history rate while djqueue's pruning runs every --prune-every
    seconds, on the full table."""
    from djqueue.db import operations

    use(FULL)
    rate = options.history_rate
    # The fill's history was laid down at ``rate`` a second: with this retention,
    # --backlog rows are past it now and the rest cross it at ``rate`` a second (from
    # the oldest row left: an earlier run with --keep pruned the oldest ones).
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM min(finished_at)) FROM djqueue_job")
        oldest = float(cursor.fetchone()[0])
    retention = time.time() - (oldest + options.backlog / rate)
    before = size_load.sizes()
    writer = size_load.history_writer(rate)
    statements: list[float] = []
    prunes: list[tuple[float, int]] = []
    say(f"-- pruning for {options.prune_seconds:g}s while history arrives at {rate:,.0f}/s")
    started = time.monotonic()
    writer.start()
    try:
        while time.monotonic() - started < options.prune_seconds:
            began = last = time.monotonic()

            def progress(total: int) -> None:
                nonlocal last
                now = time.monotonic()
                statements.append(now - last)
                last = now

            count = operations.prune(retention, progress=progress)
            prunes.append((time.monotonic() - began, count))
            time.sleep(max(0.0, options.prune_every - (time.monotonic() - began)))
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    elapsed = time.monotonic() - started
    if writer.error:
        raise writer.error
    after = size_load.sizes()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM djqueue_job "
            "WHERE finished_at < now() - make_interval(secs => %s)",
            [retention],
        )
        left = int(cursor.fetchone()[0])
    vacuums = (0, 0.0)
    if VACUUMER is not None:
        vacuums = VACUUMER.during(FULL, time.time() - elapsed, time.time())
    pruned = sum(count for _, count in prunes)
    first_seconds, first_count = prunes[0]
    statements.sort()
    return {
        "history written (jobs/s)": writer.rows() / elapsed,
        "pruned (jobs/s)": pruned / elapsed,
        "first prune: backlog catch-up (jobs/s)": first_count / first_seconds,
        "first prune (s)": first_seconds,
        "prunes": len(prunes),
        "longest prune statement (s)": statements[-1] if statements else 0.0,
        "median prune statement (s)": statements[len(statements) // 2] if statements else 0.0,
        "past retention at the end": left,
        "heap MB before": before["heap_mb"],
        "heap MB after": after["heap_mb"],
        "indexes MB before": before["indexes_mb"],
        "indexes MB after": after["indexes_mb"],
        "dead rows after": after["dead_rows"],
        "vacuums begun during": vacuums[0] if VACUUMER else after["vacuums"] - before["vacuums"],
        "their seconds (finished ones)": vacuums[1],
    }


def xmin_phase(options: argparse.Namespace) -> dict[str, Any]:
    """Jobs sent at --xmin-rate to two workers; a snapshot held for --xmin-hold seconds
    in each database of --xmin-where (``same``: the queue's; ``other``: another database
    of the same server), with --xmin-around seconds before, between and after."""
    from benchmarks import common

    use(FULL)
    spec = djqueue_side.WorkerSpec(2, options.pool, options.concurrency)
    since = size_load.mark()
    logs = size_load.Path(size_load.tempfile.mkdtemp(prefix="djqueue-size-"))
    workers = djqueue_side.start_workers(spec, logs)
    producer = size_load.producer(options.xmin_rate)
    around, hold = options.xmin_around, options.xmin_hold
    plan: list[tuple[str, str | None]] = [("before", None)]
    for where in options.xmin_where.split(","):
        plan += [(f"held, {where} database", FULL if where == "same" else EMPTY), ("after", None)]
    segments: list[tuple[str, float, float]] = []
    say(f"-- xmin: {' / '.join(label for label, _ in plan)}")
    try:
        common.wait_until(lambda: djqueue_side._workers_registered() >= 2, 60)
        started = time.time()
        producer.start()
        for label, database in plan:
            began = time.time()
            if database is None:
                time.sleep(around)
            else:
                size_load.hold_xmin(hold, database).join(timeout=hold + 30)
            segments.append((label, began, time.time()))
    finally:
        producer.stop.set()
        producer.join(timeout=30)
        ended = time.time()
        # What was sent gets the same time to finish, within a bound.
        common.wait_until(lambda: size_load._finished(since) >= producer.rows(), around, 1.0)
        common.stop(workers)
    if producer.error:
        raise producer.error
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT floor((extract(epoch FROM finished_at) - %s) / 10)::int, count(*)
            FROM djqueue_job WHERE id > %s AND finished_at IS NOT NULL GROUP BY 1 ORDER BY 1
            """,
            [started, since],
        )
        finished = dict(cursor.fetchall())
    size_load.forget_since(since)
    windows, sent, done = [], 0, 0
    per_segment: dict[str, list[float]] = {}
    for index in range(int((ended - started) // 10) + 1):
        start = started + index * 10
        sent += sum(n for at, n in producer.made if start <= at < start + 10)
        done += finished.get(index, 0)
        middle = start + 5
        label = next((name for name, a, b in segments if a <= middle < b), "draining")
        windows.append((index * 10.0, label, finished.get(index, 0), max(0, sent - done)))
        if start + 10 <= ended:  # whole windows only
            per_segment.setdefault(label, []).append(finished.get(index, 0) / 10)
    found: dict[str, Any] = {"sent (jobs/s)": producer.rows() / (ended - started)}
    for label, rates in per_segment.items():
        found[f"finished/s, {label} (median)"] = _median(rates)
    for label, _, _ in segments:
        backlogs = [w[3] for w in windows if w[1] == label]
        found[f"backlog at the end of: {label}"] = backlogs[-1] if backlogs else 0
    found["windows"] = windows
    return found


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0
