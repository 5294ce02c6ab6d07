"""The Celery side of the comparison: the same no-op work on Celery 5 with Redis.

Lives in its own virtualenv (``benchmarks/.venv-celery``): djqueue never depends on
Celery or Redis. Broker and results use their own Redis databases, flushed per phase.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
BROKER_DB = 9
RESULT_DB = 10
STATS_DB = 11

# sustained.py also runs Celery on RabbitMQ (an amqp:// URL); bookkeeping stays in Redis.
BROKER = os.environ.get("BENCH_CELERY_BROKER", f"{REDIS}/{BROKER_DB}")

app = Celery(
    "bench",
    broker=BROKER,
    backend=f"{REDIS}/{RESULT_DB}",
)
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_stats: redis.Redis | None = None


def stats() -> redis.Redis:
    """Connection (one per process, made lazily after any fork) to the bookkeeping db."""
    global _stats
    if _stats is None:
        _stats = redis.Redis.from_url(f"{REDIS}/{STATS_DB}")
    return _stats


@app.task(name="bench.noop")
def noop(index: int = 0) -> None:
    """Do nothing, then record that job ``index`` ran, and when.

    Celery keeps no row per job, so the drain is timed and checked here: one pipelined
    round trip per job (first start, last finish, a run counter, one bit per index).
    """
    began = time.time()
    pipe = stats().pipeline(transaction=False)
    pipe.setnx("first_start", began)
    pipe.set("last_finish", time.time())
    pipe.incr("runs")
    pipe.setbit("seen", index, 1)
    pipe.execute()


@app.task(name="bench.stamp", ignore_result=False)
def stamp() -> float:
    """Return the moment this job started, for pick-up latency."""
    return time.time()


@app.task(name="bench.clock")
def clock(sent_at: float = 0.0) -> None:
    """Record how long after ``sent_at`` (when it was due to be sent) this job started."""
    delay_ms = (time.time() - sent_at) * 1000
    pipe = stats().pipeline(transaction=False)
    pipe.rpush("pickups", delay_ms)
    pipe.incr("runs")
    pipe.execute()
