"""Sustained load: the highest rate each system keeps up with, and what a job costs there.

An open-loop producer sends jobs at stepped rates, each held for ``--hold`` seconds,
to workers started once per system. A step passes when the backlog stays bounded (at
most one second of work waiting when the producer stops) and the p99 pick-up delay
(from the moment a job was due to be sent to the moment its task started) is under
50 ms. For the highest passing step: CPU seconds per 1,000 jobs of the workers and of
the broker's processes (PostgreSQL backends, Redis, RabbitMQ), read from ``/proc``, and
for the PostgreSQL-based systems WAL bytes and commits per job. djqueue, Celery with
Redis, Celery with RabbitMQ and procrastinate run in the same run::

    .venv/bin/python benchmarks/sustained.py --quick
    .venv/bin/python benchmarks/sustained.py --hold 120 --json /tmp/sustained.json

By default the PostgreSQL-based systems use a private cluster made for the run (WAL is
the whole cluster's: only there is it the run's own); ``--shared-server`` uses the
server of ``PGHOST``/``PGPORT`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cluster, common, load  # noqa: E402

SYSTEMS = ("djqueue", "celery-redis", "celery-rabbitmq", "procrastinate")
DATABASE = "djqueue_bench_sustained"
PEER_DATABASE = "procrastinate_bench_sustained"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short steps, few rates")
    parser.add_argument("--rates", type=_rates, help="jobs/s of each step, comma-separated")
    parser.add_argument("--hold", type=float, help="seconds per step (quick 5, else 120)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait after a step")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--concurrency", type=int, default=4, help="slots per worker (4)")
    parser.add_argument(
        "--systems", type=_systems, default=list(SYSTEMS), help=f"of {','.join(SYSTEMS)}"
    )
    parser.add_argument("--all-steps", action="store_true", help="go on after a failed step")
    parser.add_argument("--shared-server", action="store_true", help="no private cluster")
    parser.add_argument("--json", type=Path, help="also write every step's figures here")
    options = parser.parse_args(argv)
    if options.rates is None:
        options.rates = list(load.QUICK_RATES if options.quick else load.FULL_RATES)
    if options.hold is None:
        options.hold = 5.0 if options.quick else 120.0
    return options


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _systems(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(chosen) - set(SYSTEMS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(sorted(unknown))}")
    return chosen


class Djqueue:
    """djqueue under sustained load: ``runworker`` processes, jobs sent from here."""

    name = "djqueue"

    def __init__(self, workers: list[subprocess.Popen[bytes]]) -> None:
        from django.db import connection

        from benchmarks.benchapp.tasks import clock

        self.processes = workers
        self.connection = connection
        self.clock = clock

    def send(self, scheduled: Sequence[float]) -> None:
        if len(scheduled) == 1:
            self.clock.delay(scheduled[0])
        else:
            self.clock.delay_many([(at,) for at in scheduled])

    def finished(self) -> int:
        return int(self._one("SELECT count(*) FROM djqueue_job WHERE finished_at IS NOT NULL"))

    def pickups_ms(self) -> tuple[list[float], int]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT ((result #>> '{}')::float8 - (args->>0)::float8) * 1000"
                " FROM djqueue_job WHERE state = 'SUCCESS'"
            )
            delays = [float(row[0]) for row in cursor.fetchall()]
        not_run = int(self._one("SELECT count(*) FROM djqueue_job WHERE state <> 'SUCCESS'"))
        return delays, not_run

    def reset(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("TRUNCATE djqueue_job")
            cursor.execute("VACUUM ANALYZE djqueue_job")

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def server_pids(self) -> list[int]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend'"
            )
            return [int(row[0]) for row in cursor.fetchall()]

    def counters(self) -> dict[str, float]:
        return server_counters(self.connection)

    def connections(self) -> int:
        """Backends of the benchmark database, this process's own left out."""
        return len(self.server_pids()) - 1

    def _one(self, query: str) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchone()[0]


def server_counters(connection: Any) -> dict[str, float]:
    """WAL position (bytes) of the cluster and commits of this database."""
    with connection.cursor() as cursor:
        # Statistics are read once per transaction: forget the last reading.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, xact_commit FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        wal, commits = cursor.fetchone()
    return {"wal_bytes": float(wal), "commits": float(commits)}


def run_djqueue(options: argparse.Namespace) -> dict[str, Any]:
    """Every step for djqueue, in this process with Django set up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from benchmarks import djqueue_side as side

    side.prepare_database()
    logs = Path(tempfile.mkdtemp(prefix="djqueue-sustained-"))
    spec = side.WorkerSpec(options.workers, "threads", options.concurrency)
    workers = side.start_workers(spec, logs)
    try:
        system = Djqueue(workers)
        if not common.wait_until(lambda: system.connections() >= 3 * spec.count, 60):
            raise RuntimeError(f"workers did not start:\n{common.tail(logs / 'worker-0.log')}")
        connections = system.connections() / spec.count
        steps = load.run_steps(
            system, options.rates, options.hold, options.grace, options.all_steps
        )
    finally:
        common.stop(workers)
    return {
        "steps": steps,
        "spec": f"{spec.count} x threads c={spec.concurrency}",
        "connections_per_worker": connections,
    }


def run_peer(name: str, options: argparse.Namespace) -> dict[str, Any]:
    """Every step for one peer, in the benchmark virtualenv of Celery and procrastinate."""
    from benchmarks.bench import setup_celery

    python = setup_celery()
    command = [
        str(python),
        "-m",
        "benchmarks.sustained_peers",
        name,
        "--rates",
        ",".join(str(rate) for rate in options.rates),
        "--hold",
        str(options.hold),
        "--grace",
        str(options.grace),
        "--workers",
        str(options.workers),
        "--concurrency",
        str(options.concurrency),
        "--database",
        PEER_DATABASE,
    ]
    if options.all_steps:
        command.append("--all-steps")
    env = common.child_env()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    budget = (options.hold + options.grace + 30) * len(options.rates) + 120
    done = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=budget
    )
    if done.returncode:
        return {"error": f"exit status {done.returncode}", "steps": []}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_all(options: argparse.Namespace) -> dict[str, Any]:
    """Every chosen system in turn; a private cluster for the run unless told otherwise."""
    results: dict[str, Any] = {}
    with _server(options) as where:
        results["server"] = where
        for name in options.systems:
            print(f"-- sustained load: {name}", file=sys.stderr, flush=True)
            try:
                results[name] = (
                    run_djqueue(options) if name == "djqueue" else run_peer(name, options)
                )
            except Exception as exc:  # one system's failure must not lose the others
                results[name] = {"error": str(exc).splitlines()[0][:200], "steps": []}
    return results


class _server:
    """Point PGHOST/PGPORT at a private cluster for the run (or leave them)."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.cluster: cluster.Cluster | None = None
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> str:
        os.environ["DJQUEUE_BENCH_DB"] = DATABASE
        why = cluster.unavailable()
        if self.options.shared_server or why:
            return "shared server" + (f" (no private cluster: {why})" if why else "")
        self.cluster = cluster.Cluster()
        self.cluster.start()
        for key, value in (("PGHOST", "127.0.0.1"), ("PGPORT", str(self.cluster.port))):
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value
        return f"private cluster (PostgreSQL defaults) on port {self.cluster.port}"

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self.cluster is not None:
            self.cluster.remove()


def table(results: dict[str, Any]) -> str:
    """The highest sustained rate of each system and its costs there."""
    header = (
        "system",
        "sustained (jobs/s)",
        "p50 / p99 pick-up (ms)",
        "CPU s per 1,000 jobs: workers + server",
        "WAL bytes/job",
        "commits/job",
        "first failed step",
    )
    rows = [header]
    for name in SYSTEMS:
        found = results.get(name)
        if found is None:
            continue
        steps = found.get("steps") or []
        top, passed = load.shown(steps)
        failed = next((step for step in steps if not step["passed"]), None)
        failed_text = f"{failed['rate']:,.0f}/s: {failed['why']}" if failed else "none"
        if found.get("error"):
            failed_text = f"error: {found['error']}"
        if top is None:
            rows.append((name, "-", "-", "-", "-", "-", failed_text))
            continue
        cpu_w, cpu_s = top["cpu_workers_per_1000"], top["cpu_server_per_1000"]
        rows.append(
            (
                name,
                f"{top['rate']:,.0f}" if passed else f"none (figures at {top['rate']:,.0f})",
                f"{top['pickup_p50_ms']:.1f} / {top['pickup_p99_ms']:.1f}",
                f"{cpu_w:.2f} + {cpu_s:.2f} = {cpu_w + cpu_s:.2f}",
                f"{top['wal_bytes_per_job']:,.0f}" if "wal_bytes_per_job" in top else "n/a",
                f"{top['commits_per_job']:.2f}" if "commits_per_job" in top else "n/a",
                failed_text,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Run every system's steps and print the table."""
    options = parse_args(argv)
    started, load_average = time.time(), os.getloadavg()[0]
    results = run_all(options)
    rates = ", ".join(f"{rate:,.0f}" for rate in options.rates)
    print(
        f"\nSustained load: steps of {options.hold:.0f} s at {rates} jobs/s; "
        f"{options.workers} workers x {options.concurrency} slots each; "
        f"{results['server']}; load average at the start "
        f"{load_average:.1f}; {time.time() - started:.0f} s in all\n"
    )
    print(table(results))
    dj = results.get("djqueue") or {}
    if "connections_per_worker" in dj:
        print(f"\ndjqueue connections per worker process: {dj['connections_per_worker']:.1f}")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
