"""The Celery half of the benchmark; run with the Celery virtualenv's Python.

``bench.py`` starts this as a subprocess and reads one JSON object from its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks import common
from benchmarks.celery_app import BROKER_DB, REDIS, RESULT_DB, STATS_DB, app, noop, stamp


def clean() -> None:
    """Flush the benchmark's own Redis databases (never db 0 or others)."""
    for db in (BROKER_DB, RESULT_DB, STATS_DB):
        redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


def enqueue_one_by_one(jobs: int) -> dict[str, Any]:
    """``noop.delay(i)`` ``jobs`` times; the jobs stay queued for a drain."""
    clean()
    started = time.perf_counter()
    for index in range(jobs):
        noop.delay(index)
    elapsed = time.perf_counter() - started
    return {"enqueue_one": common.rate(jobs, elapsed), "enqueue_one_seconds": elapsed}


def drain(
    jobs: int, workers: int, pool: str, concurrency: int, timeout: float, key: str
) -> dict[str, Any]:
    """Start ``workers`` Celery workers on ``jobs`` queued no-op jobs; time them to the end."""
    db = redis.Redis.from_url(f"{REDIS}/{STATS_DB}")
    logs = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    spawned = time.time()
    processes = [
        common.start(_worker_command(pool, concurrency, f"bench{i}"), logs / f"w{i}.log", _env())
        for i in range(workers)
    ]
    try:
        done = common.wait_until(lambda: int(db.get("runs") or 0) >= jobs, timeout, 0.2)
    finally:
        common.stop(processes)
    runs = int(db.get("runs") or 0)
    if not done:
        raise RuntimeError(
            f"Celery drain timed out with {runs} of {jobs} jobs run:\n"
            + common.tail(logs / "w0.log")
        )
    first, last = float(db.get("first_start") or 0), float(db.get("last_finish") or 0)
    distinct = int(db.bitcount("seen"))
    return {
        key: common.rate(jobs, last - first),
        f"{key}_seconds": last - first,
        f"{key}_wall": common.rate(jobs, last - spawned),
        f"{key}_ok": runs == jobs and distinct == jobs,
    }


def pick_up_latency(samples: int, pool: str, concurrency: int, timeout: float) -> dict[str, Any]:
    """Send ``stamp`` jobs one at a time to one idle worker; enqueue → start, in ms."""
    clean()
    logs = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    worker = common.start(_worker_command(pool, concurrency, "latency"), logs / "w.log", _env())
    delays: list[float] = []
    try:
        for _ in range(5):  # warm-up, and wait for the worker to be up
            stamp.delay().get(timeout=timeout)
        for _ in range(samples):
            time.sleep(0.02)
            sent = time.time()
            began = stamp.delay().get(timeout=timeout)
            delays.append((began - sent) * 1000)
    finally:
        common.stop([worker])
    return {
        "latency_p50_ms": common.percentile(delays, 0.50),
        "latency_p99_ms": common.percentile(delays, 0.99),
        "latency_max_ms": max(delays),
        "latency_samples": len(delays),
    }


def enqueue_for_drain(jobs: int) -> None:
    """Queue ``jobs`` no-op jobs for the next drain (Celery has no bulk send)."""
    clean()
    for index in range(jobs):
        noop.delay(index)


def per_pool(
    jobs: int, workers: int, pools: dict[str, int], samples: int, timeout: float
) -> dict[str, Any]:
    """Drain and pick-up latency for each of ``pools`` (name -> concurrency)."""
    figures: dict[str, Any] = {}
    for pool, concurrency in pools.items():
        _phase(f"Celery: {workers} x {pool} c={concurrency}")
        enqueue_for_drain(jobs)
        found = drain(jobs, workers, pool, concurrency, timeout, "drain")
        found.update(pick_up_latency(samples, pool, concurrency, timeout))
        found["spec"] = f"{workers} x {pool} c={concurrency}"
        figures[pool] = found
    return figures


def _phase(name: str) -> None:
    print(f"-- {name}", file=sys.stderr, flush=True)


def _worker_command(pool: str, concurrency: int, name: str) -> list[str]:
    # Gossip, mingle and heartbeats are cluster chatter a single-host drain does not need.
    return [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "benchmarks.celery_app",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "warning",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        f"{name}@%h",
    ]


def _env() -> dict[str, str]:
    return common.child_env()


def main() -> None:
    """Run the phases asked for and print their figures as JSON on the last line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--pool", required=True, help="djqueue's pool, matched if possible")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--latency-jobs", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument(
        "--pools", help="per-pool mode: pool=concurrency,... each drained by --workers workers"
    )
    options = parser.parse_args()
    figures: dict[str, Any] = {}
    # Prefork with 2 children: Celery's default pool, one child per core here.
    figures.update(enqueue_one_by_one(options.jobs))
    figures.update(drain(options.jobs, 1, "prefork", 2, options.timeout, "drain_prefork"))
    if options.pools:
        pools = {
            name: int(c) for name, _, c in (p.partition("=") for p in options.pools.split(","))
        }
        figures["pools"] = per_pool(
            options.jobs, options.workers, pools, options.latency_jobs, options.timeout
        )
        clean()
        app.close()
        print(json.dumps(figures))
        return
    match = {"threads": "threads", "solo": "solo"}.get(options.pool)
    if match:
        clean()
        for index in range(options.jobs):
            noop.delay(index)
        concurrency = 1 if match == "solo" else options.concurrency
        figures.update(
            drain(options.jobs, options.workers, match, concurrency, options.timeout, "drain_match")
        )
        figures["drain_match_pool"] = f"{options.workers} x {match} c={concurrency}"
    figures.update(pick_up_latency(options.latency_jobs, "prefork", 2, options.timeout))
    clean()
    app.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
