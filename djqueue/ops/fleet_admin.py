"""The fleet's admin pages: workers (read only) and queues (paused and resumed through
the broker, which tells the workers)."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString

from djqueue.core import conf, states
from djqueue.db import broker
from djqueue.db.models import Job, Queue, Worker
from djqueue.ops import access, admin_tables
from djqueue.ops.admin_base import STATE_COLOURS, ReadOnlyAdmin, coloured, log_entries


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "hostname",
        "pid",
        "pool",
        "concurrency",
        "queues",
        "started_at",
        "last_heartbeat",
        "status",
        "running_now",
        "jobs_done",
        "child_processes",
    )
    ordering = ("-last_heartbeat",)
    readonly_fields = [*(field.name for field in Worker._meta.fields), "child_processes"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        running = (
            Job.objects.filter(state=states.STARTED, worker=OuterRef("name"))
            .values("worker")
            .annotate(n=Count("id"))
            .values("n")
        )
        queryset: QuerySet[Worker] = super().get_queryset(request)
        return queryset.annotate(running=Coalesce(Subquery(running), 0))

    @admin.display(description="status")
    def status(self, worker: Worker) -> SafeString:
        if worker.stopped_at is not None:
            return coloured("#777777", "stopped")
        silent = timezone.now() - worker.last_heartbeat
        limit = datetime.timedelta(seconds=3 * conf.number("HEARTBEAT_SECONDS"))
        if silent > limit:
            return coloured(STATE_COLOURS[states.FAILURE], "lost")
        return coloured(STATE_COLOURS[states.SUCCESS], "alive")

    @admin.display(description="children")
    def child_processes(self, worker: Worker) -> str:
        return (
            ", ".join(
                f"{child['pid']}" + (f" ({child['job']})" if child.get("job") else "")
                for child in worker.children or []
            )
            or "-"
        )

    @admin.display(description="jobs running now", ordering="running")
    def running_now(self, worker: Worker) -> int:
        return int(getattr(worker, "running", 0))


@admin.register(Queue)
class QueueAdmin(admin_tables.NeedsTables):
    """Pause and resume queues. Saving goes through the broker, which tells the workers.

    Pausing and resuming need ``pause_queue``, whichever way they are asked for: the
    actions, the change form, or adding a queue row with *paused* ticked.
    """

    list_display = ("name", "paused", "changed_at")
    fields = ("name", "paused")
    actions = ["pause", "resume"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        name = ("name",) if obj is not None else ()
        return name if self.has_pause_permission(request) else (*name, "paused")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.PAUSE)

    def save_model(self, request: HttpRequest, obj: Queue, form: Any, change: bool) -> None:
        was = (
            Queue.objects.using(conf.database())
            .filter(pk=obj.pk)
            .values_list("paused", flat=True)
            .first()
        )
        if bool(was) != obj.paused and not self.has_pause_permission(request):
            raise PermissionDenied("Pausing and resuming a queue needs djqueue.pause_queue.")
        broker.set_paused(obj.name, obj.paused)

    @admin.action(description="Pause selected queues", permissions=["pause"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._set(request, queryset, paused=True)

    @admin.action(description="Resume selected queues", permissions=["pause"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._set(request, queryset, paused=False)

    def _set(self, request: HttpRequest, queryset: QuerySet[Queue], paused: bool) -> None:
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            broker.set_paused(name, paused)
        log_entries(
            request, Queue.objects.filter(pk__in=names), CHANGE, "Paused" if paused else "Resumed"
        )
        verb = "Paused" if paused else "Resumed"
        self.message_user(request, f"{verb} {len(names)} queue(s): {', '.join(names)}.")
