"""Queue state and schedules as Django models.

Only :mod:`djqueue.db.broker` writes queue state (jobs, workers, limits). Periodic tasks
and their schedules are edited in the admin and written by :mod:`djqueue.db.periodic`.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone

from djqueue.core import codec, ids, registry, schedules, states


def parent_expression() -> Coalesce:
    """The id (as text) of the job that started a job: the step before it in a chain or
    the job whose link callback it is (``workflow.parent``), or else the task that sent
    it (``workflow.options.parent_id``); NULL for the rest."""
    return Coalesce(
        KeyTextTransform("parent", "workflow"),
        KeyTextTransform("parent_id", KeyTransform("options", "workflow")),
    )


class Job(models.Model):
    """One task invocation: its arguments, where it is in its life, and its outcome."""

    STATE_CHOICES = [(state, state.title()) for state in states.ALL]

    id = models.UUIDField(primary_key=True, default=ids.new_id, editable=False)
    task_name = models.CharField(max_length=255)
    queue = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first.")
    state = models.CharField(max_length=8, choices=STATE_CHOICES, default=states.PENDING)
    args = models.JSONField(default=list, encoder=codec.Encoder, decoder=codec.Decoder)
    kwargs = models.JSONField(default=dict, encoder=codec.Encoder, decoder=codec.Decoder)
    attempt = models.IntegerField(default=0, help_text="Times a worker has claimed the job.")
    # Times the job was taken back from a worker that stopped renewing its lease (it
    # died, froze or was cut off). Such a job may have killed its worker, so its next
    # runs happen in a process of their own (docs/guarantees.md).
    lost = models.IntegerField(
        default=0, db_default=0, help_text="Times taken back from a lost worker."
    )
    # Times a run of the job was seen to kill the process running it; at
    # QUARANTINE_AFTER_KILLS the job ends FAILURE instead of running again.
    kills = models.IntegerField(default=0, db_default=0, help_text="Times it killed its process.")
    retries = models.IntegerField(default=0, help_text="Retries requested so far.")
    max_attempts = models.IntegerField(
        null=True, blank=True, help_text="Claims allowed before a lost job fails."
    )
    eta = models.DateTimeField(help_text="Not run before this moment.")
    expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField()
    # When a worker last claimed it (rate limits count claims), and when that run
    # started: a claimed job may wait in the worker's buffer first (RECEIVED).
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, encoder=codec.Encoder, decoder=codec.Decoder)
    error_type = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    # Set by revoke(terminate=True) on a running job: its worker stops it. Kept in the
    # row so that a worker (re)started later, or a rescue, still honours it.
    revoke_requested_at = models.DateTimeField(null=True, blank=True)
    # Limits (see docs/limits.md). ``gated`` is true when the job has a rate or
    # concurrency limit: such jobs are claimed by a separate, locking path, so that the
    # plain claim never looks at them (its index leaves them out).
    gated = models.BooleanField(default=False, db_default=False)
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Starts allowed per rate period, cluster-wide."
    )
    rate_period = models.FloatField(null=True, blank=True, help_text="Seconds.")
    # NULL, not "", means "none": the partial indexes below test IS NOT NULL.
    concurrency_key = models.TextField(  # noqa: DJ001
        null=True, blank=True, help_text="Jobs sharing this key count toward one limit."
    )
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Jobs with the key allowed to run at once."
    )
    unique_key = models.TextField(  # noqa: DJ001
        null=True, blank=True, help_text="At most one waiting job holds this key."
    )
    unique_until = models.DateTimeField(
        null=True, blank=True, help_text="The key is given up to a duplicate after this."
    )
    # Reported by the running task: self.update_progress (current, total, message), or
    # the meta of self.update_state.
    progress = models.JSONField(null=True, blank=True)
    # The state the running task reported with self.update_state (a custom one such as
    # "PROGRESS"): AsyncResult.state shows it while the job runs, and after Ignore. The
    # queue never reads it; a claim clears it, since it describes one run.
    reported_state = models.CharField(max_length=100, blank=True, default="", db_default="")
    # Earlier attempts that did not end the job (retried, or lost with their worker),
    # oldest first; the row's own columns describe the latest one.
    history = models.JSONField(null=True, blank=True)
    # When the job last asked to be retried (the dashboard counts retries per minute).
    retried_at = models.DateTimeField(null=True, blank=True)
    # The job's place in a workflow (docs/canvas.md): what to start, insert or revoke when
    # it ends, the chord it counts toward, its parent and group. NULL for a plain job,
    # which the finish statement then passes over at no cost.
    workflow = models.JSONField(null=True, blank=True)

    class Meta:
        # The console's own permissions (docs/monitoring.md#access), where the model's
        # add/change/delete/view do not fit an action.
        permissions = [
            ("revoke_job", "Can revoke jobs that have not started"),
            ("terminate_job", "Can stop running jobs"),
            ("retry_job", "Can retry failed jobs"),
            ("view_metrics", "Can read the Prometheus metrics"),
        ]
        indexes = [
            # Matches the claim query's WHERE and ORDER BY exactly (see sql.CLAIM).
            models.Index(
                fields=["queue", "-priority", "eta", "id"],
                condition=Q(state__in=states.WAITING, gated=False),
                name="djqueue_job_ready",
            ),
            # The same for limited jobs, read only by the limited claim (sql.LOCK_GATES).
            models.Index(
                fields=["queue", "-priority", "eta", "id"],
                condition=Q(state__in=states.WAITING, gated=True),
                name="djqueue_job_gated",
            ),
            # Counting the running jobs of a concurrency key.
            models.Index(
                fields=["concurrency_key"],
                condition=Q(state__in=states.HELD, concurrency_key__isnull=False),
                name="djqueue_job_concurrency",
            ),
            # Lease rescue and heartbeat touch only jobs held by workers.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(state__in=states.HELD),
                name="djqueue_job_running",
            ),
            # Pruning deletes finished jobs oldest first.
            models.Index(
                fields=["finished_at"],
                condition=Q(finished_at__isnull=False),
                name="djqueue_job_finished",
            ),
            # Retries per minute on the dashboard: only jobs that were retried.
            models.Index(
                fields=["retried_at"],
                condition=Q(retried_at__isnull=False),
                name="djqueue_job_retried",
            ),
            # The admin's "failed" and "revoked" filters, newest first, on a big table.
            # Partial: only jobs that end badly pay for it.
            models.Index(
                fields=["-id"],
                condition=Q(state__in=[states.FAILURE, states.REVOKED]),
                name="djqueue_job_failed",
            ),
            # AsyncResult.children: the jobs a job started. Only jobs that carry a
            # continuation can have a parent, so only they are in it.
            models.Index(
                parent_expression(),
                condition=Q(workflow__isnull=False),
                name="djqueue_job_parent",
            ),
        ]
        constraints = [
            # Unique jobs: the arbiter of enqueue's INSERT ... ON CONFLICT. Only waiting
            # jobs hold their key, so a running or finished one never blocks a new one.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(unique_key__isnull=False, state__in=states.WAITING),
                name="djqueue_job_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.id}] {self.state}"


class Group(models.Model):
    """A group of jobs, restorable by id; for a chord, also the counter of its header.

    Written only by the broker. A chord's header jobs decrement ``remaining`` in the
    statement that records their outcome; the one that brings it to zero starts the body.
    """

    id = models.UUIDField(primary_key=True, default=ids.new_id, editable=False)
    # The result ids of the members, in order (the last job of a member that is a chain).
    job_ids = models.JSONField(default=list)
    created_at = models.DateTimeField()
    # Chords only: header members not ended yet, their results by position, the body's
    # first jobs (released with the results), and the first header failure, if any.
    remaining = models.IntegerField(null=True, blank=True)
    results = models.JSONField(default=dict, blank=True)
    release = models.JSONField(null=True, blank=True)
    body_id = models.UUIDField(null=True, blank=True)
    failed = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        kind = "chord" if self.remaining is not None else "group"
        return f"{kind} {self.id} ({len(self.job_ids)} jobs)"


class Worker(models.Model):
    """A running (or stopped) ``runworker`` process, kept current by its heartbeat."""

    name = models.CharField(max_length=255, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    pool = models.CharField(max_length=20)
    concurrency = models.IntegerField()
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    jobs_done = models.BigIntegerField(default=0)
    # prefork: the child processes, as the last heartbeat saw them:
    # [{"pid": 123, "job": "<id>" or None}].
    children = models.JSONField(default=list, blank=True)

    class Meta:
        permissions = [("control_worker", "Can control workers (pool size, shutdown)")]

    def __str__(self) -> str:
        return self.name


class Queue(models.Model):
    """A queue workers must not take jobs from while it is paused. Rows exist only for
    queues that were ever paused; jobs name their queue directly."""

    name = models.CharField(max_length=100, primary_key=True)
    paused = models.BooleanField(default=False)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("pause_queue", "Can pause and resume queues")]

    def __str__(self) -> str:
        return f"{self.name} (paused)" if self.paused else self.name


class Control(models.Model):
    """A command for workers (``djqueue.control``): stop, ping, change a limit, report.

    Written by :mod:`djqueue.db.control` and announced on a channel; live workers act at
    once. One-shot commands (a ping, a shutdown) are for the workers alive when they are
    sent and lapse at ``expires_at``; lasting ones (new time or rate limits) have none
    and are applied by workers that start later too, until a newer one replaces them.
    """

    id = models.UUIDField(primary_key=True, default=ids.new_id, editable=False)
    command = models.CharField(max_length=40)
    arguments = models.JSONField(default=dict)
    # Worker or node names (``-n``) the command is for; NULL: every worker.
    destination = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # Lasting commands replace earlier ones with the same key (the command and its task).
    key = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="djqueue_control_created")]

    def __str__(self) -> str:
        return f"{self.command} {self.id}"


class ControlReply(models.Model):
    """One worker's answer to a :class:`Control` command."""

    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="replies")
    worker = models.CharField(max_length=255)
    reply = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["control", "worker"], name="djqueue_control_reply_once")
        ]

    def __str__(self) -> str:
        return f"{self.worker} on {self.control_id}"


class TimestampArrayField(models.Field):  # type: ignore[type-arg]
    """A ``timestamptz[]`` column. Only the broker's SQL reads and writes it.

    A plain column type rather than ``django.contrib.postgres``' ArrayField, which would
    make every project add ``django.contrib.postgres`` to ``INSTALLED_APPS``.
    """

    def db_type(self, connection: Any) -> str:
        return "timestamp with time zone[]"


class Limit(models.Model):
    """The shared state of one rate or concurrency limit, and the row its claims lock.

    Keys are ``rate:<task name>`` and ``concurrency:<key>``. Rows are created by the
    first claim that needs them; ``starts`` is the sliding log of a rate limit.
    """

    key = models.TextField(primary_key=True)
    starts = TimestampArrayField(default=list, blank=True)

    def __str__(self) -> str:
        return self.key


class IntegerArrayField(models.Field):  # type: ignore[type-arg]
    """An ``integer[]`` column (a histogram's bucket counts), without
    ``django.contrib.postgres``, as :class:`TimestampArrayField`."""

    def db_type(self, connection: Any) -> str:
        return "integer[]"


class BigIntegerArrayField(models.Field):  # type: ignore[type-arg]
    """A ``bigint[]`` column: bucket counts that grow for ever (cumulative totals)."""

    def db_type(self, connection: Any) -> str:
        return "bigint[]"


# Time series --------------------------------------------------------------------------
#
# Written only by djqueue.db.series (one writer at a time, off the hot path), read by the
# console. Their size follows minutes x queues x tasks, never the number of jobs.


class JobMinute(models.Model):
    """Jobs of one queue and task that ended one way in one minute.

    ``outcome`` is SUCCESS, FAILURE or REVOKED (counted at ``finished_at``), or RETRY
    (counted at the job's latest retry). Runtime (finish minus start) and wait (start
    minus due time) are kept as sums, maxima and bucket counts (``core.histogram``), for
    jobs that ran; a job revoked before it ran counts in ``count`` only.
    """

    minute = models.DateTimeField()
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
        verbose_name = "job minute"
        constraints = [
            # The arbiter of the rollup's upsert; its leading column serves time windows.
            models.UniqueConstraint(
                fields=["minute", "queue", "task_name", "outcome"], name="djqueue_jobminute_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.queue} {self.task_name} {self.outcome}"


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


# Periodic tasks ---------------------------------------------------------------------
#
# Schedule state, not queue state: written by the admin, by ``runbeat``'s settings sync
# and by the scheduler (see djqueue/db/periodic.py). The jobs they start are enqueued by the
# broker, like any other job.


class IntervalSchedule(models.Model):
    """Every N days, hours, minutes, seconds or microseconds."""

    DAYS, HOURS, MINUTES, SECONDS = "days", "hours", "minutes", "seconds"
    MICROSECONDS = "microseconds"
    PERIOD_CHOICES = [
        (DAYS, "Days"),
        (HOURS, "Hours"),
        (MINUTES, "Minutes"),
        (SECONDS, "Seconds"),
        (MICROSECONDS, "Microseconds"),
    ]
    PERIOD_MICROSECONDS = {
        DAYS: 86_400_000_000,
        HOURS: 3_600_000_000,
        MINUTES: 60_000_000,
        SECONDS: 1_000_000,
        MICROSECONDS: 1,
    }

    every = models.PositiveIntegerField(help_text="Number of periods between runs.")
    period = models.CharField(max_length=24, choices=PERIOD_CHOICES, default=SECONDS)

    class Meta:
        verbose_name = "interval"
        constraints = [
            models.CheckConstraint(condition=Q(every__gte=1), name="djqueue_interval_positive")
        ]

    def __str__(self) -> str:
        return f"every {schedules.duration(self.seconds)}"

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return self.every * self.PERIOD_MICROSECONDS[self.period] / 1_000_000

    def schedule(self, anchor: datetime.datetime) -> schedules.Every:
        """The schedule, counted from ``anchor`` (the periodic task's start)."""
        return schedules.Every(self.seconds, anchor)


class CrontabSchedule(models.Model):
    """A crontab read in a time zone (fields, syntax and rules of Celery's ``crontab``)."""

    minute = models.CharField(
        max_length=240, default="*", help_text="0-59: '*', '0', '0,30', '10-20', '*/15'."
    )
    hour = models.CharField(
        max_length=96,
        default="*",
        help_text="0-23: '*', '8', '9-17', '22-2' (through midnight), '*/3'.",
    )
    day_of_week = models.CharField(
        max_length=64,
        default="*",
        help_text="0-6, Sunday is 0, or names: 'mon-fri', 'sat,sun'. "
        "A day must match this and the day of the month.",
    )
    day_of_month = models.CharField(
        max_length=124,
        default="*",
        help_text="1-31: '1', '1-7,15-21', '*/2'. A day must match this and the day of the week.",
    )
    month_of_year = models.CharField(
        max_length=64, default="*", help_text="1-12 or names: 'jan', 'nov-feb', '*/3'."
    )
    timezone = models.CharField(
        max_length=63, default="UTC", help_text="An IANA time zone, such as Europe/Paris."
    )

    class Meta:
        verbose_name = "crontab"

    def __str__(self) -> str:
        try:
            return self.schedule().describe()
        except ValueError:
            return f"invalid crontab {self.minute} {self.hour} {self.day_of_month} ..."

    def schedule(self) -> schedules.Crontab:
        """The schedule; raises ValueError when a field is invalid."""
        return schedules.crontab(
            self.minute,
            self.hour,
            self.day_of_week,
            self.day_of_month,
            self.month_of_year,
            self.timezone,
        )

    def clean(self) -> None:
        try:
            self.schedule()
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class ClockedSchedule(models.Model):
    """Once, at a moment."""

    clocked_time = models.DateTimeField()

    class Meta:
        verbose_name = "clocked"

    def __str__(self) -> str:
        return self.schedule().describe()

    def schedule(self) -> schedules.Clocked:
        return schedules.Clocked(aware(self.clocked_time))


class SolarSchedule(models.Model):
    """Daily at a sun event at a place."""

    EVENT_CHOICES = [
        ("dawn_astronomical", "Astronomical dawn"),
        ("dawn_nautical", "Nautical dawn"),
        ("dawn_civil", "Civil dawn"),
        ("sunrise", "Sunrise"),
        ("solar_noon", "Solar noon"),
        ("sunset", "Sunset"),
        ("dusk_civil", "Civil dusk"),
        ("dusk_nautical", "Nautical dusk"),
        ("dusk_astronomical", "Astronomical dusk"),
    ]

    event = models.CharField(max_length=24, choices=EVENT_CHOICES)
    latitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )

    class Meta:
        verbose_name = "solar event"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "latitude", "longitude"], name="djqueue_solar_unique"
            )
        ]

    def __str__(self) -> str:
        return self.schedule().describe()

    def schedule(self) -> schedules.Solar:
        return schedules.solar(self.event, float(self.latitude), float(self.longitude))


class PeriodicTask(models.Model):
    """A task sent on a schedule by ``runbeat``: exactly one of the four schedules."""

    CATCH_UP_CHOICES = [
        (schedules.CATCH_UP_ONCE, "Once for the missed period"),
        (schedules.CATCH_UP_ALL, "Every missed run"),
        (schedules.CATCH_UP_SKIP, "Skip missed runs"),
    ]

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=255, help_text="A registered task name.")
    interval = models.ForeignKey(IntervalSchedule, on_delete=models.CASCADE, null=True, blank=True)
    crontab = models.ForeignKey(CrontabSchedule, on_delete=models.CASCADE, null=True, blank=True)
    solar = models.ForeignKey(SolarSchedule, on_delete=models.CASCADE, null=True, blank=True)
    clocked = models.ForeignKey(ClockedSchedule, on_delete=models.CASCADE, null=True, blank=True)
    args = models.JSONField(default=list, blank=True, encoder=codec.Encoder, decoder=codec.Decoder)
    kwargs = models.JSONField(
        default=dict, blank=True, encoder=codec.Encoder, decoder=codec.Decoder
    )
    queue = models.CharField(
        max_length=100, blank=True, default="", help_text="Empty: the task's own queue."
    )
    priority = models.SmallIntegerField(
        null=True, blank=True, help_text="Empty: the task's own priority."
    )
    expires = models.DateTimeField(
        null=True, blank=True, help_text="Jobs sent after this moment expire at it."
    )
    expire_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Each job expires this many seconds after it is sent."
    )
    enabled = models.BooleanField(default=True)
    one_off = models.BooleanField(default=False, help_text="Run once, then disable.")
    start_time = models.DateTimeField(
        null=True, blank=True, help_text="No run before this moment (empty: from creation)."
    )
    catch_up = models.CharField(
        max_length=8,
        choices=CATCH_UP_CHOICES,
        default=schedules.CATCH_UP_ONCE,
        help_text="What to do about runs missed while no scheduler was running.",
    )
    # The latest slot handled: run, or passed over under the "skip" policy. The next
    # slot is computed from it, never from the current time.
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    total_run_count = models.PositiveIntegerField(default=0, editable=False)
    description = models.TextField(blank=True, default="")
    # Rows made from DJQUEUE["BEAT_SCHEDULE"] by runbeat's sync; the sync never touches
    # other rows.
    from_settings = models.BooleanField(default=False, editable=False)
    date_created = models.DateTimeField(default=timezone.now, editable=False)
    date_changed = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "periodic task"
        permissions = [("run_periodictask", "Can run periodic tasks now")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(interval__isnull=False, crontab=None, solar=None, clocked=None)
                    | Q(interval=None, crontab__isnull=False, solar=None, clocked=None)
                    | Q(interval=None, crontab=None, solar__isnull=False, clocked=None)
                    | Q(interval=None, crontab=None, solar=None, clocked__isnull=False)
                ),
                name="djqueue_periodictask_one_schedule",
                violation_error_message=(
                    "Choose exactly one schedule: an interval, a crontab, a solar event "
                    "or a clocked time."
                ),
            ),
            models.CheckConstraint(
                condition=Q(catch_up__in=schedules.CATCH_UP_POLICIES),
                name="djqueue_periodictask_catch_up",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.task and self.task not in registry.names():
            raise ValidationError(
                {"task": f"{self.task!r} is not a registered task; choose one of the list."}
            )

    @property
    def schedule_row(self) -> models.Model | None:
        """The one schedule row this task uses."""
        return self.interval or self.crontab or self.solar or self.clocked

    def schedule(self) -> schedules.Schedule:
        """The schedule object; raises ValueError when the row is invalid."""
        if self.interval is not None:
            return self.interval.schedule(self.anchor)
        if self.crontab is not None:
            return self.crontab.schedule()
        if self.solar is not None:
            return self.solar.schedule()
        if self.clocked is not None:
            return self.clocked.schedule()
        raise ValueError(f"periodic task {self.name!r} has no schedule")

    @property
    def anchor(self) -> datetime.datetime:
        """Where the task's slots start: its start time, or else its creation.

        Whole seconds, so that an interval's runs fall on whole seconds too.
        """
        return aware(self.start_time or self.date_created).replace(microsecond=0)


class PeriodicRun(models.Model):
    """One slot of a periodic task that was enqueued, with its job.

    The unique (periodic task, slot) pair is what makes double firing impossible: the
    job is enqueued in the same transaction that inserts this row, and only if it did.
    """

    periodic_task = models.ForeignKey(PeriodicTask, on_delete=models.CASCADE, related_name="runs")
    slot = models.DateTimeField()
    job_id = models.UUIDField()
    enqueued_at = models.DateTimeField()

    class Meta:
        verbose_name = "periodic run"
        constraints = [
            models.UniqueConstraint(
                fields=["periodic_task", "slot"], name="djqueue_periodicrun_unique_slot"
            )
        ]
        indexes = [models.Index(fields=["enqueued_at"], name="djqueue_periodicrun_enqueued")]

    def __str__(self) -> str:
        return f"{self.periodic_task_id} at {self.slot.isoformat()}"


def aware(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as an aware datetime (naive ones, with USE_TZ = False, are local)."""
    if timezone.is_naive(moment):
        return timezone.make_aware(moment, timezone.get_default_timezone())
    return moment
