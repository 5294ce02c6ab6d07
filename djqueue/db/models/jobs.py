"""Jobs, the groups and chords they form, and the shared state of their limits.

Only :mod:`djqueue.db.broker` writes them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce, Left

from djqueue.core import codec, ids, states
from djqueue.db.models.fields import TimestampArrayField


def parent_expression() -> Coalesce:
    """The id (as text) of the job that started a job: the step before it in a chain or
    the job whose link callback it is (``workflow.parent``), or else the task that sent
    it (``workflow.options.parent_id``); NULL for the rest."""
    return Coalesce(
        KeyTextTransform("parent", "workflow"),
        KeyTextTransform("parent_id", KeyTransform("options", "workflow")),
    )


# Characters of a job's error (type, then message) that error search looks through: a
# message may hold megabytes, and a trigram index entry per character would too.
SEARCHED_ERROR_CHARACTERS = 1000
# The states most jobs never reach, which djqueue_job_rare_states indexes.
RARE_STATES = sorted(
    [states.FAILURE, states.REVOKED, states.REJECTED, states.IGNORED, states.RETRY]
)


def call_values() -> CombinedExpression:
    """A job's arguments and keyword arguments as one JSON array (``args || kwargs``:
    the arguments, then the keyword arguments as one object), which the job list's
    search matches by value among the newest jobs (:mod:`djqueue.db.search`)."""
    return CombinedExpression(F("args"), "||", F("kwargs"), output_field=models.JSONField())


def error_text() -> Left:
    """A failed job's error as searched: ``"<type>: <message>"``, cut to
    SEARCHED_ERROR_CHARACTERS: exactly the expression of the trigram index
    ``djqueue_job_error_search`` (migration 0023)."""
    with_type = CombinedExpression(F("error_type"), "||", Value(": "))
    whole = CombinedExpression(with_type, "||", F("error_message"))
    return Left(whole, SEARCHED_ERROR_CHARACTERS, output_field=models.TextField())


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
    # The signal that revoke(terminate=True, signal=...) asked for (empty: the pool's own
    # way, SIGKILL in a prefork child); see docs/stopping.md.
    revoke_signal = models.PositiveSmallIntegerField(null=True, blank=True)
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
            # The job list's filters by the states most jobs never reach, newest first,
            # on a big table (a range of the index per state). Partial: only jobs that
            # end badly or are retried pay for it (migration 0025 builds it
            # concurrently).
            models.Index(
                fields=["state", "-id"],
                condition=Q(state__in=RARE_STATES),
                name="djqueue_job_rare_states",
            ),
            # AsyncResult.children: the jobs a job started. Only jobs that carry a
            # continuation can have a parent, so only they are in it.
            models.Index(
                parent_expression(),
                condition=Q(workflow__isnull=False),
                name="djqueue_job_parent",
            ),
            # Search in error text (djqueue_job_error_search, on error_text()) is made
            # by migration 0023 in SQL: an operator class on an expression needs
            # django.contrib.postgres in INSTALLED_APPS to be declared here. (The
            # index on arguments it made too is dropped by migration 0027.)
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


class Limit(models.Model):
    """The shared state of one rate or concurrency limit, and the row its claims lock.

    Keys are ``rate:<task name>`` and ``concurrency:<key>``. Rows are created by the
    first claim that needs them; ``starts`` is the sliding log of a rate limit.
    """

    key = models.TextField(primary_key=True)
    starts = TimestampArrayField(default=list, blank=True)

    def __str__(self) -> str:
        return self.key
