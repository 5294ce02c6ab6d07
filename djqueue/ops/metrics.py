"""Prometheus metrics, read from the database at each scrape (cluster-wide figures).

Counters and histograms come from the cumulative totals the rollup keeps
(:func:`djqueue.db.series.totals`): they only grow, whichever process answers, across
worker restarts and pruning, so ``rate()`` and ``histogram_quantile()`` work on them.
Gauges (depth, oldest job's age, workers, paused queues) are read live.

Labels are bounded: at most ``METRICS_MAX_LABEL_VALUES`` queue names and task names keep
their own value, the first ones to appear; later ones are reported as ``(other)``, so a
kept value never changes and every counter stays monotonic. ``METRICS_TASK_LABELS =
False`` drops the task label altogether.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from djqueue.core import conf, histogram
from djqueue.db import series
from djqueue.db.models import Queue
from djqueue.ops import stats

OTHER = "(other)"
RETRY = "RETRY"
# Every metric the exposition can name (docs and the Grafana dashboard use these).
NAMES = (
    "djqueue_jobs_finished_total",
    "djqueue_jobs_retried_total",
    "djqueue_job_runtime_seconds",
    "djqueue_job_wait_seconds",
    "djqueue_jobs",
    "djqueue_oldest_waiting_seconds",
    "djqueue_queue_paused",
    "djqueue_workers",
    "djqueue_metrics_lag_seconds",
)


class Labels:
    """Bounds label values: the first ``cap`` distinct values keep their name."""

    def __init__(self, seen_in_order: Iterable[str], cap: int) -> None:
        self.kept: set[str] = set()
        for value in seen_in_order:
            if len(self.kept) >= cap:
                break
            self.kept.add(value)

    def __call__(self, value: str) -> str:
        return value if value in self.kept else OTHER


class QueueCollector(Collector):
    """Collects the counters, histograms and gauges at scrape time."""

    def collect(self) -> Iterator[Metric]:
        totals = series.totals()
        cap = conf.integer("METRICS_MAX_LABEL_VALUES")
        queues = Labels(_unique(t.queue for t in totals), cap)
        tasks = Labels(_unique(t.task_name for t in totals), cap)
        per_task = conf.flag("METRICS_TASK_LABELS")
        yield from _counters(totals, queues, tasks, per_task)
        yield from _gauges([t.queue for t in totals], cap)


def _counters(
    totals: Sequence[series.Total], queues: Labels, tasks: Labels, per_task: bool
) -> Iterator[Metric]:
    names = ["queue", "task"] if per_task else ["queue"]
    finished: dict[tuple[str, ...], int] = defaultdict(int)
    retried: dict[tuple[str, ...], int] = defaultdict(int)
    runtime: dict[tuple[str, ...], list[Sequence[int]]] = defaultdict(list)
    wait: dict[tuple[str, ...], list[Sequence[int]]] = defaultdict(list)
    sums: dict[tuple[str, str, tuple[str, ...]], float] = defaultdict(float)
    for total in totals:
        key = (queues(total.queue), tasks(total.task_name))[: len(names)]
        if total.outcome == RETRY:
            retried[key] += total.count
            continue
        finished[(*key, total.outcome)] += total.count
        runtime[key].append(total.runtime_buckets)
        wait[key].append(total.wait_buckets)
        sums["runtime", "", key] += total.runtime_sum
        sums["wait", "", key] += total.wait_sum
    done = CounterMetricFamily(
        "djqueue_jobs_finished", "Jobs that ended, by outcome.", labels=[*names, "outcome"]
    )
    for labels, count in sorted(finished.items()):
        done.add_metric(list(labels), count)
    yield done
    again = CounterMetricFamily(
        "djqueue_jobs_retried",
        "Retries, counted at each job's latest retry when its minute is rolled up.",
        labels=names,
    )
    for labels, count in sorted(retried.items()):
        again.add_metric(list(labels), count)
    yield again
    yield _histogram(
        "djqueue_job_runtime_seconds", "Runtime (finish minus start).", names, runtime, sums
    )
    yield _histogram("djqueue_job_wait_seconds", "Wait (start minus due time).", names, wait, sums)


def _histogram(
    name: str,
    doc: str,
    names: list[str],
    buckets: dict[tuple[str, ...], list[Sequence[int]]],
    sums: dict[tuple[str, str, tuple[str, ...]], float],
) -> Metric:
    kind = "runtime" if "runtime" in name else "wait"
    family = HistogramMetricFamily(name, doc, labels=names)
    for labels, arrays in sorted(buckets.items()):
        counts = histogram.added(arrays)
        cumulative, seen = [], 0
        for bound, count in zip(histogram.BOUNDS, counts, strict=False):
            seen += count
            cumulative.append((repr(bound), float(seen)))
        cumulative.append(("+Inf", float(sum(counts))))
        family.add_metric(list(labels), cumulative, sum_value=sums[kind, "", labels])
    return family


def _gauges(seen: list[str], cap: int) -> Iterator[Metric]:
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
    depth: dict[tuple[str, str], int] = defaultdict(int)
    age: dict[str, float] = defaultdict(float)
    rows = stats.queue_depths()
    # The counters' queues first, so that a queue keeps its name in both.
    queues = Labels(_unique([*seen, *(row.queue for row in rows)]), cap)
    for row in rows:
        queue = queues(row.queue)
        for state in ("waiting", "scheduled", "reserved", "running"):
            depth[queue, state] += getattr(row, state)
        waited = row.oldest_wait.total_seconds() if row.oldest_wait else 0.0
        age[queue] = max(age[queue], waited)
    for (queue, state), count in sorted(depth.items()):
        jobs.add_metric([queue, state], count)
    for queue, seconds in sorted(age.items()):
        oldest.add_metric([queue], seconds)
    yield jobs
    yield oldest
    paused = GaugeMetricFamily(
        "djqueue_queue_paused", "1 for a paused queue (only queues ever paused).", labels=["queue"]
    )
    queues_ever_paused = Queue.objects.using(conf.monitoring_database())
    for name, is_paused in queues_ever_paused.values_list("name", "paused"):
        paused.add_metric([name], 1.0 if is_paused else 0.0)
    yield paused
    workers = GaugeMetricFamily("djqueue_workers", "Live workers (recent heartbeat).")
    workers.add_metric([], len(stats.live_workers()))
    yield workers
    yield _lag()


def _lag() -> Metric:
    """How far behind now the counters are (they grow once a minute is rolled up)."""
    lag = GaugeMetricFamily(
        "djqueue_metrics_lag_seconds",
        "Seconds since the end of the last minute added to the counters.",
    )
    until = series.mark()
    if until is not None:
        behind = timezone.now() - until
        lag.add_metric([], behind.total_seconds())
    return lag


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def exposition() -> bytes:
    """The current metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector())
    return generate_latest(registry)
