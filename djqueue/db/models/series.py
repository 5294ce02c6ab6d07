"""The time series: jobs ended and queue depth per minute, and the cumulative totals
the metrics export.

Written only by :mod:`djqueue.db.series` (one writer at a time, off the hot path), read
by the console. Their size follows minutes x queues x tasks, never the number of jobs.
"""

from __future__ import annotations

from django.db import models

from djqueue.db.models.fields import BigIntegerArrayField, IntegerArrayField


class EndedJobs(models.Model):
    """The columns of a time bucket of ended jobs of one queue, task and outcome: their
    count, and runtime and wait as sums, maxima and bucket counts (``core.histogram``)."""

    queue = models.CharField(max_length=100)
    task_name = models.CharField(max_length=255)
    outcome = models.CharField(max_length=8)
    count = models.IntegerField()
    runtime_sum = models.FloatField(default=0.0)
    runtime_max = models.FloatField(null=True)
    runtime_buckets = IntegerArrayField(default=list)
    wait_sum = models.FloatField(default=0.0)
    wait_max = models.FloatField(null=True)
    wait_buckets = IntegerArrayField(default=list)

    class Meta:
        abstract = True


class JobMinute(EndedJobs):
    """Jobs of one queue and task that ended one way in one minute.

    ``outcome`` is SUCCESS, FAILURE or REVOKED (counted at ``finished_at``), or RETRY
    (counted at the job's latest retry). Runtime (finish minus start) and wait (start
    minus due time) are kept as sums, maxima and bucket counts (``core.histogram``), for
    jobs that ran; a job revoked before it ran counts in ``count`` only.
    """

    minute = models.DateTimeField()

    class Meta:
        verbose_name = "job minute"
        constraints = [
            # The arbiter of the rollup's upsert; its leading column serves time windows.
            models.UniqueConstraint(
                fields=["minute", "queue", "task_name", "outcome"], name="djqueue_jobminute_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.queue} {self.task_name} {self.outcome}"


class JobHour(EndedJobs):
    """The minutes of :class:`JobMinute` added up per hour (same columns, ``hour`` for
    ``minute``), for reads over a day or a week: a week of minutes is some hundred
    thousand rows, of hours some thousands. The rollup rewrites the hours of the minutes
    it writes, from those minutes."""

    hour = models.DateTimeField()

    class Meta:
        verbose_name = "job hour"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "queue", "task_name", "outcome"], name="djqueue_jobhour_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.queue} {self.task_name} {self.outcome}"


class QueueMinute(models.Model):
    """A queue's depth as sampled in one minute (the latest sample of that minute).

    The row with the empty queue name holds the totals over all queues; it is written
    at every sample, so a minute without it was not sampled (no worker ran).
    """

    minute = models.DateTimeField()
    queue = models.CharField(max_length=100)
    waiting = models.IntegerField()  # due now
    scheduled = models.IntegerField()  # due later
    running = models.IntegerField()  # claimed or started
    oldest_seconds = models.FloatField(null=True)  # age of the oldest due job

    class Meta:
        verbose_name = "queue minute"
        constraints = [
            models.UniqueConstraint(fields=["minute", "queue"], name="djqueue_queueminute_key")
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.queue or '(all)'}"


class SeriesMark(models.Model):
    """How far the time series is rolled up: minutes before ``until`` are done."""

    name = models.CharField(max_length=20, primary_key=True)
    until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} until {self.until.isoformat()}"


class JobTotal(models.Model):
    """Jobs of one queue and task that ended one way since the table was made: the
    cumulative counters the metrics export (docs/monitoring.md#metrics).

    The rollup adds each minute of ``JobMinute`` once, in its own transaction, when the
    minute will not be rewritten again; so the totals only grow, whatever restarts,
    prunes or rewrites happen. ``id`` orders label values by first appearance.
    """

    queue = models.CharField(max_length=100)
    task_name = models.CharField(max_length=255)
    outcome = models.CharField(max_length=8)
    count = models.BigIntegerField(default=0)
    runtime_sum = models.FloatField(default=0.0)
    runtime_buckets = BigIntegerArrayField(default=list)
    wait_sum = models.FloatField(default=0.0)
    wait_buckets = BigIntegerArrayField(default=list)

    class Meta:
        verbose_name = "job total"
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "task_name", "outcome"], name="djqueue_jobtotal_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.queue} {self.task_name} {self.outcome}: {self.count}"
