"""The peers under sustained load: Celery on Redis, Celery on RabbitMQ, procrastinate.

Run by ``sustained.py`` with the benchmark virtualenv's Python; prints one JSON object
on its last line. Each peer's task records its pick-up delay and a run counter in
Redis (one pipelined round trip per job), since none of them keeps a row per job that
says when it started.
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

import redis

from benchmarks import common, load

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
RABBITMQ = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
STATS_DB = 11


class Peer:
    """What the peers share: Redis bookkeeping, worker processes, a warm-up."""

    name = ""

    def __init__(self, workers: int, concurrency: int) -> None:
        self.stats = redis.Redis.from_url(f"{REDIS}/{STATS_DB}")
        self.sent = 0
        self.count, self.concurrency = workers, concurrency
        self.logs = Path(tempfile.mkdtemp(prefix=f"{self.name}-sustained-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.processes = [
            common.start(self.worker_command(i), self.logs / f"w{i}.log", self.env())
            for i in range(self.count)
        ]
        self.reset()
        # Warm-up, and proof that the workers serve: one job per worker slot.
        warm = self.count * self.concurrency
        self.send([time.time()] * warm)
        if not common.wait_until(lambda: self.finished() >= warm, 60):
            raise RuntimeError(
                f"{self.name} workers did not start:\n{common.tail(self.logs / 'w0.log')}"
            )

    def stop(self) -> None:
        common.stop(self.processes)

    def finished(self) -> int:
        return int(self.stats.get("runs") or 0)

    def pickups_ms(self) -> tuple[list[float], int]:
        delays = [float(value) for value in self.stats.lrange("pickups", 0, -1)]
        return delays, max(0, self.sent - len(delays))

    def reset(self) -> None:
        self.purge()
        self.stats.delete("pickups", "runs")
        self.sent = 0

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def env(self) -> dict[str, str]:
        return common.child_env()

    def counters(self) -> dict[str, float]:
        return {}

    def worker_command(self, index: int) -> list[str]:
        raise NotImplementedError

    def purge(self) -> None:
        raise NotImplementedError

    def send(self, scheduled: Sequence[float]) -> None:
        raise NotImplementedError

    def server_pids(self) -> list[int]:
        raise NotImplementedError


class CeleryPeer(Peer):
    """Celery 5 with the threads pool, on Redis or RabbitMQ."""

    def __init__(self, broker: str, workers: int, concurrency: int) -> None:
        self.broker = broker
        self.name = "celery-rabbitmq" if broker.startswith("amqp") else "celery-redis"
        os.environ["BENCH_CELERY_BROKER"] = broker
        from benchmarks import celery_app

        self.app, self.clock = celery_app.app, celery_app.clock
        super().__init__(workers, concurrency)

    def worker_command(self, index: int) -> list[str]:
        from benchmarks.celery_side import _worker_command

        return _worker_command("threads", self.concurrency, f"sustained{index}")

    def env(self) -> dict[str, str]:
        return common.child_env(BENCH_CELERY_BROKER=self.broker)

    def purge(self) -> None:
        self.app.control.purge()

    def send(self, scheduled: Sequence[float]) -> None:
        # Celery has no bulk send: one message each.
        for at in scheduled:
            self.clock.apply_async((at,))
        self.sent += len(scheduled)

    def server_pids(self) -> list[int]:
        if self.broker.startswith("amqp"):
            return load.pids_named("beam.smp")
        return load.pids_named("redis-server")


class ProcrastinatePeer(Peer):
    """procrastinate with its asyncio worker, on a database of its own."""

    name = "procrastinate"

    def __init__(self, database: str, workers: int, concurrency: int) -> None:
        import psycopg

        host, port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432")
        self.dsn = f"host={host} port={port} user=postgres dbname={database}"
        os.environ["BENCH_PROCRASTINATE_DSN"] = self.dsn
        with psycopg.connect(self.dsn.replace(database, "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{database}"')
        from benchmarks.procrastinate_app import app

        self.db = psycopg.connect(self.dsn, autocommit=True)
        # Opened synchronously, the app defers through a synchronous connection pool.
        self.app = app.open()
        self.app.schema_manager.apply_schema()
        self.task = self.app.configure_task(name="bench.clock")
        super().__init__(workers, concurrency)

    def worker_command(self, index: int) -> list[str]:
        return [
            str(Path(sys.executable).with_name("procrastinate")),
            "--app=benchmarks.procrastinate_app.app",
            "worker",
            "--concurrency",
            str(self.concurrency),
            "--name",
            f"sustained{index}",
        ]

    def env(self) -> dict[str, str]:
        return common.child_env(BENCH_PROCRASTINATE_DSN=self.dsn)

    def purge(self) -> None:
        self.db.execute("TRUNCATE procrastinate_jobs, procrastinate_events CASCADE")

    def send(self, scheduled: Sequence[float]) -> None:
        if len(scheduled) == 1:
            self.task.defer(sent_at=scheduled[0])
        else:
            self.task.batch_defer(*({"sent_at": at} for at in scheduled))
        self.sent += len(scheduled)

    def server_pids(self) -> list[int]:
        found = self.db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend'"
        )
        return [int(row[0]) for row in found.fetchall()]

    def counters(self) -> dict[str, float]:
        self.db.execute("SELECT pg_stat_clear_snapshot()")
        wal, commits = self.db.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, xact_commit FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone() or (0, 0)
        return {"wal_bytes": float(wal), "commits": float(commits)}


def main() -> None:
    """Run one peer's steps and print them as JSON on the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=("celery-redis", "celery-rabbitmq", "procrastinate"))
    parser.add_argument("--rates", required=True)
    parser.add_argument("--hold", type=float, required=True)
    parser.add_argument("--grace", type=float, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--database", required=True, help="procrastinate's database")
    parser.add_argument("--all-steps", action="store_true")
    options = parser.parse_args()
    peer: Peer
    if options.peer == "procrastinate":
        peer = ProcrastinatePeer(options.database, options.workers, options.concurrency)
    else:
        broker = RABBITMQ if options.peer == "celery-rabbitmq" else f"{REDIS}/9"
        peer = CeleryPeer(broker, options.workers, options.concurrency)
    rates = [float(rate) for rate in options.rates.split(",")]
    peer.start()
    try:
        steps = load.run_steps(peer, rates, options.hold, options.grace, options.all_steps)
    finally:
        peer.stop()
        peer.reset()
    spec = f"{options.workers} x {'asyncio' if options.peer == 'procrastinate' else 'threads'}"
    result: dict[str, Any] = {"steps": steps, "spec": f"{spec} c={options.concurrency}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
