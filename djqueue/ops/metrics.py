"""Prometheus metrics read from the queue tables on each scrape (cluster-wide figures).

Uses the standard client library (the ``prometheus`` extra). Every figure comes from
:mod:`djqueue.ops.stats`, so a scrape costs what a dashboard load costs.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from djqueue.ops import stats

WINDOW_HOURS = 1.0


class QueueCollector(Collector):
    """Collects queue depths, worker count and per-task figures at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._tasks()
        workers = GaugeMetricFamily("djqueue_workers", "Live workers (recent heartbeat).")
        workers.add_metric([], len(stats.live_workers()))
        yield workers

    def _queues(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "djqueue_jobs",
            "Jobs waiting, scheduled, reserved by a worker or running, per queue.",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "djqueue_oldest_waiting_seconds",
            "Age of the oldest job due and not yet started, per queue.",
            labels=["queue"],
        )
        for depth in stats.queue_depths():
            jobs.add_metric([depth.queue, "waiting"], depth.waiting)
            jobs.add_metric([depth.queue, "scheduled"], depth.scheduled)
            jobs.add_metric([depth.queue, "reserved"], depth.reserved)
            jobs.add_metric([depth.queue, "running"], depth.running)
            age = depth.oldest_wait.total_seconds() if depth.oldest_wait else 0.0
            oldest.add_metric([depth.queue], age)
        yield jobs
        yield oldest

    def _tasks(self) -> Iterator[Metric]:
        window = f"{WINDOW_HOURS:g}h"
        finished = GaugeMetricFamily(
            "djqueue_task_finished",
            f"Jobs finished in the last {window}, per task and final state.",
            labels=["task", "state"],
        )
        runtime = GaugeMetricFamily(
            "djqueue_task_runtime_seconds",
            f"Runtime percentiles over the last {window}, per task.",
            labels=["task", "quantile"],
        )
        wait = GaugeMetricFamily(
            "djqueue_task_wait_seconds",
            f"Waiting-time percentiles (start minus due) over the last {window}, per task.",
            labels=["task", "quantile"],
        )
        for task in stats.task_figures(WINDOW_HOURS):
            finished.add_metric([task.task_name, "FAILURE"], task.failed)
            finished.add_metric([task.task_name, "OTHER"], task.finished - task.failed)
            for quantile, run, waited in (
                ("0.5", task.runtime_p50, task.wait_p50),
                ("0.95", task.runtime_p95, task.wait_p95),
            ):
                if run is not None:
                    runtime.add_metric([task.task_name, quantile], run)
                if waited is not None:
                    wait.add_metric([task.task_name, quantile], waited)
        yield finished
        yield runtime
        yield wait


def exposition() -> bytes:
    """The current metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector())
    return generate_latest(registry)
