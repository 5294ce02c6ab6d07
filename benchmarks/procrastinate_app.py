"""procrastinate's side of the sustained-load comparison: its app and the same task.

Lives in the benchmark virtualenv with Celery (``benchmarks/.venv-celery``); djqueue
never depends on procrastinate. Its jobs live in a database of their own; the task
records its pick-up delay in Redis, as Celery's does.
"""

from __future__ import annotations

import os
import time

import procrastinate
import redis.asyncio

from benchmarks.celery_app import REDIS, STATS_DB

DSN = os.environ.get(
    "BENCH_PROCRASTINATE_DSN",
    "host=127.0.0.1 port=5432 user=postgres dbname=procrastinate_bench_sustained",
)

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DSN))

_stats: redis.asyncio.Redis | None = None


@app.task(name="bench.clock")
async def clock(sent_at: float = 0.0) -> None:
    """Record how long after ``sent_at`` (when it was due to be sent) this job started."""
    global _stats
    delay_ms = (time.time() - sent_at) * 1000
    if _stats is None:
        _stats = redis.asyncio.Redis.from_url(f"{REDIS}/{STATS_DB}")
    pipe = _stats.pipeline(transaction=False)
    pipe.rpush("pickups", delay_ms)
    pipe.incr("runs")
    await pipe.execute()
