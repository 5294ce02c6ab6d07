"""The fleet: workers, queues (paused or not), and the commands sent to workers with
their replies.

Workers and queues are written by :mod:`djqueue.db.broker`, commands and replies by
:mod:`djqueue.db.control`.
"""

from __future__ import annotations

from django.db import models

from djqueue.core import ids


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
    """A queue workers must not take jobs from while it is paused, and its limits across
    all workers (docs/limits.md#queue-limits). Rows exist only for queues that were ever
    paused or limited; jobs name their queue directly."""

    name = models.CharField(max_length=100, primary_key=True)
    paused = models.BooleanField(default=False)
    changed_at = models.DateTimeField(auto_now=True)
    # Limits of the whole queue, over all workers together; NULL: none.
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Jobs of the queue held by workers at once, at most."
    )
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Jobs of the queue started per rate period, at most."
    )
    rate_period = models.FloatField(null=True, blank=True, help_text="Seconds.")

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
