"""The thundering herd: claim statements per job when many idle workers hear of one job.

    .venv/bin/python benchmarks/herd.py --workers 8 --jobs 200

A private cluster that loads ``pg_stat_statements``, so that the server counts the
statements; ``--workers`` idle ``runworker`` processes (threads, one slot each) on one
queue; ``--jobs`` jobs sent one at a time, each awaited, a few ms apart. Printed for
each setting of ``WAKE_STAGGER_MS`` (0: every worker answers every notification at
once, as before staggering existed; then the default): claim statements per job,
``djqueue_drained`` notifications per job, pick-up latency (sent to started), and CPU
per job of the workers and of the whole server.

Polls are kept out of the count: the workers poll every 60 s, and no job here waits
for a poll (a job that did would show in the latency).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cluster, common, load  # noqa: E402

DATABASE = "djqueue_bench_herd"
STAGGERS = ("0", "", "0", "")  # "": the default; twice, in turns, as the machine drifts
# The claim statements (djqueue.db.sql.claim), as pg_stat_statements shows them.
CLAIMS = "query LIKE '%SET state = ''RECEIVED'', attempt%'"
DRAINED = "query LIKE '%djqueue_drained%'"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8, help="idle workers (8)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs sent one by one (200)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per job at most")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def measure(options: argparse.Namespace, stagger: str, server: int) -> dict[str, Any]:
    """Claims and announcements per job, and pick-up, with ``WAKE_STAGGER_MS=stagger``."""
    from benchmarks import djqueue_side as side
    from benchmarks.benchapp.tasks import stamp

    side.clean()
    os.environ["DJQUEUE_BENCH_POLL_SECONDS"] = "60"
    os.environ["DJQUEUE_BENCH_WAKE_STAGGER_MS"] = stagger
    logs = Path(tempfile.mkdtemp(prefix="djqueue-herd-"))
    workers = side.start_workers(side.WorkerSpec(options.workers, "threads", 1), logs)
    delays: list[float] = []
    try:
        if not common.wait_until(lambda: side._workers_registered() >= options.workers, 120):
            raise RuntimeError(f"workers did not start:\n{common.tail(logs / 'worker-0.log')}")
        # Every worker counts its peers at its next heartbeat (every 5 s), then learns
        # its part from the first jobs.
        time.sleep(6)
        for _ in range(5):
            stamp.delay().get(timeout=options.timeout)
        _reset()
        pids = [worker.pid for worker in workers]
        cpu = load.cpu_seconds(pids), load.cpu_seconds([server])
        for _ in range(options.jobs):
            time.sleep(0.01)  # the workers settle back into their idle wait
            sent = time.time()
            began = stamp.delay().get(timeout=options.timeout)
            delays.append((began - sent) * 1000)
        claims, drained = _count(CLAIMS), _count(DRAINED)
        workers_cpu = load.cpu_seconds(pids) - cpu[0]
        server_cpu = load.cpu_seconds([server]) - cpu[1]
    finally:
        common.stop(workers)
    return {
        "stagger_ms": stagger or "default",
        "claims_per_job": claims / options.jobs,
        "drained_per_job": drained / options.jobs,
        "workers_us_per_job": workers_cpu / options.jobs * 1e6,
        "server_us_per_job": server_cpu / options.jobs * 1e6,
        "pickup_p50_ms": common.percentile(delays, 0.50),
        "pickup_p90_ms": common.percentile(delays, 0.90),
        "pickup_p99_ms": common.percentile(delays, 0.99),
    }


def _reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_statements_reset()")


def _count(where: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE {where}")
        return int(cursor.fetchone()[0])


def table(rows: list[dict[str, Any]], options: argparse.Namespace) -> str:
    lines = [
        f"{options.workers} idle workers (threads, 1 slot each), {options.jobs} jobs sent "
        "one by one; load average "
        f"{os.getloadavg()[0]:.1f}",
        f"  {'WAKE_STAGGER_MS':<16} {'claims/job':>10} {'drained/job':>11} "
        f"{'pick-up p50':>11} {'p90':>7} {'p99':>7} {'CPU µs/job: workers':>20} {'server':>7}",
    ]
    for row in rows:
        lines.append(
            f"  {row['stagger_ms']:<16} {row['claims_per_job']:>10.2f} "
            f"{row['drained_per_job']:>11.2f} {row['pickup_p50_ms']:>9.1f}ms "
            f"{row['pickup_p90_ms']:>5.1f}ms {row['pickup_p99_ms']:>5.1f}ms "
            f"{row['workers_us_per_job']:>20,.0f} {row['server_us_per_job']:>7,.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    why = cluster.unavailable()
    if why:
        print(f"no private cluster: {why}", file=sys.stderr)
        return 1
    with cluster.private(["shared_preload_libraries=pg_stat_statements"]) as server:
        os.environ.update(PGHOST="127.0.0.1", PGPORT=str(server.port), DJQUEUE_BENCH_DB=DATABASE)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
        import django

        django.setup()
        from django.db import connection

        from benchmarks import djqueue_side as side

        side.prepare_database()
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        rows = [measure(options, stagger, postmaster) for stagger in STAGGERS]
        connection.close()
    print(table(rows, options))
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
