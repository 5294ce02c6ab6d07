"""Queue state as Django models. Only :mod:`djqueue.broker` writes these rows."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from djqueue import codec, ids, states


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
    retries = models.IntegerField(default=0, help_text="Retries requested so far.")
    max_attempts = models.IntegerField(
        null=True, blank=True, help_text="Claims allowed before a lost job fails."
    )
    eta = models.DateTimeField(help_text="Not run before this moment.")
    expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField()
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

    class Meta:
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
                condition=Q(state=states.STARTED, concurrency_key__isnull=False),
                name="djqueue_job_concurrency",
            ),
            # Lease rescue and heartbeat touch only running jobs.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(state=states.STARTED),
                name="djqueue_job_running",
            ),
            # Pruning deletes finished jobs oldest first.
            models.Index(
                fields=["finished_at"],
                condition=Q(finished_at__isnull=False),
                name="djqueue_job_finished",
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

    def __str__(self) -> str:
        return self.name


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
