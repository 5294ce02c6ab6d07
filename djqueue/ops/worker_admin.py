"""The workers' admin pages: a readable page per worker, and control of it through the
database (:mod:`djqueue.ops.worker_control`) wherever it runs."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from djqueue.client import control
from djqueue.core import conf, states
from djqueue.db import fleet
from djqueue.db.models import Job, Worker
from djqueue.ops import access, durations, job_list, links, worker_control
from djqueue.ops.admin_base import STATE_COLOURS, ReadOnlyAdmin, coloured

# The worker's summary on its page; every field of the page is read only.
SUMMARY_FIELDS: tuple[str, ...] = (
    "name",
    "status",
    "hostname",
    "pid",
    "pool",
    "concurrency",
    "queue_list",
    "started",
    "uptime",
    "heartbeat",
    "jobs_done",
)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    """Workers as the person on call reads them, and control of one from its page
    (:mod:`djqueue.ops.worker_control`)."""

    list_display = (
        "name",
        "hostname",
        "pid",
        "pool",
        "concurrency",
        "queue_list",
        "started_when",
        "heartbeat_when",
        "status",
        "running_now",
        "jobs_done",
        "child_processes",
    )
    ordering = ("-last_heartbeat",)
    change_form_template = "djqueue/admin/worker_change_form.html"
    fieldsets = [
        (
            None,
            {"fields": SUMMARY_FIELDS},
        ),
        ("Running now", {"fields": ["held_jobs"]}),
        ("Child processes", {"fields": ["child_table"]}),
    ]
    readonly_fields = [*SUMMARY_FIELDS, "held_jobs", "child_table"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        running = (
            Job.objects.filter(state=states.STARTED, worker=OuterRef("name"))
            .values("worker")
            .annotate(n=Count("id"))
            .values("n")
        )
        queryset: QuerySet[Worker] = super().get_queryset(request)
        return queryset.annotate(running=Coalesce(Subquery(running), 0))

    def get_urls(self) -> list[URLPattern]:
        command = path(
            "<path:object_id>/control/",
            self.admin_site.admin_view(self.control_view),
            name="djqueue_worker_control",
        )
        return [command, *super().get_urls()]

    # Control ----------------------------------------------------------------------

    def has_control_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.CONTROL_WORKERS)

    def control_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Send the command the page's form asks for; back to the page with the reply."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_control_permission(request):
            raise PermissionDenied("Controlling workers needs djqueue.control_worker.")
        worker = self.get_object(request, object_id)
        if worker is None:
            raise Http404("No such worker.")
        try:
            result = worker_control.send(worker, request.POST)
        except worker_control.Refused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.log_change(request, worker, result.message)
            self.message_user(
                request, result.message, messages.SUCCESS if result.ok else messages.WARNING
            )
        return redirect("admin:djqueue_worker_change", worker.pk)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        worker = context.get("original")
        context["may_control"] = self.has_control_permission(request)
        context["alive"] = worker is not None and _alive(worker)
        context["scalable"] = worker is not None and worker.pool != "solo"
        context["log_levels"] = control.LOG_LEVELS
        context["most_slots"] = worker_control.MOST_SLOTS
        return super().render_change_form(request, context, *args, **kwargs)

    # Fields -----------------------------------------------------------------------

    @admin.display(description="status")
    def status(self, worker: Worker) -> SafeString:
        if worker.stopped_at is not None:
            return coloured("#777777", "stopped")
        if not _alive(worker):
            return coloured(STATE_COLOURS[states.FAILURE], "lost")
        return coloured(STATE_COLOURS[states.SUCCESS], "alive")

    @admin.display(description="queues")
    def queue_list(self, worker: Worker) -> SafeString:
        """Its queues, each linking to its waiting jobs."""
        names = [str(name) for name in worker.queues or []]
        if not names:
            return format_html("{}", "-")
        return format_html_join(", ", '<a href="{}">{}</a>', ((links.waiting(n), n) for n in names))

    @admin.display(description="started")
    def started(self, worker: Worker) -> str:
        return durations.moment(worker.started_at)

    # The list reads times as the job list does: to the second, and how long ago (a lost
    # worker's "last heartbeat 12 min ago" is what the person on call looks for).
    class Media:
        css = {"all": ("djqueue/job_list.css",)}

    @admin.display(description="started", ordering="started_at")
    def started_when(self, worker: Worker) -> SafeString:
        return job_list.when(worker.started_at)

    @admin.display(description="last heartbeat", ordering="last_heartbeat")
    def heartbeat_when(self, worker: Worker) -> SafeString:
        return job_list.when(worker.last_heartbeat)

    @admin.display(description="uptime")
    def uptime(self, worker: Worker) -> str:
        end = worker.stopped_at or timezone.now()
        return durations.words(end - worker.started_at) + (
            " (stopped)" if worker.stopped_at else ""
        )

    @admin.display(description="last heartbeat")
    def heartbeat(self, worker: Worker) -> str:
        ago = timezone.now() - worker.last_heartbeat
        return f"{durations.moment(worker.last_heartbeat)} ({durations.words(ago)} ago)"

    @admin.display(description="jobs")
    def held_jobs(self, worker: Worker) -> SafeString:
        """The jobs it holds now (running or claimed), each linking to its page."""
        rows = (
            Job.objects.using(conf.database())
            .filter(worker=worker.name, state__in=states.HELD)
            .order_by("claimed_at", "id")
            .values_list("id", "task_name", "state", "started_at", "claimed_at")[:SHOWN_JOBS]
        )
        now = timezone.now()
        cells = [
            (
                reverse("admin:djqueue_job_change", args=[job_id]),
                str(job_id),
                task,
                coloured(STATE_COLOURS.get(state, "#000000"), state),
                _since(now, started or claimed),
            )
            for job_id, task, state, started, claimed in rows
        ]
        if not cells:
            return format_html("{}", "Nothing.")
        body = format_html_join(
            "",
            '<tr><td><a href="{}"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            cells,
        )
        more = (
            format_html(
                '<p><a href="{}">{}</a></p>',
                links.held_by(worker.name),
                f"The first {SHOWN_JOBS}; all of them in the job list",
            )
            if len(cells) == SHOWN_JOBS
            else ""
        )
        return format_html(
            '<table class="djq-worker-jobs"><thead><tr><th>job</th><th>task</th><th>state</th>'
            "<th>for</th></tr></thead><tbody>{}</tbody></table>{}",
            body,
            more,
        )

    @admin.display(description="children")
    def child_table(self, worker: Worker) -> SafeString:
        """A prefork worker's child processes: pid, the job each runs, its memory."""
        children = [child for child in worker.children or [] if isinstance(child, dict)]
        if not children:
            return format_html("{}", f"None (the {worker.pool} pool runs jobs in the worker).")
        cells = [
            (
                child.get("pid", "?"),
                _job_link(child.get("job")),
                _memory(child.get("memory_kb")),
            )
            for child in children
        ]
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", cells)
        return format_html(
            '<table class="djq-worker-children"><thead><tr><th>pid</th><th>job</th>'
            "<th>memory</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="children")
    def child_processes(self, worker: Worker) -> str:
        children = [child for child in worker.children or [] if isinstance(child, dict)]
        if not children:
            return "-"
        busy = sum(1 for child in children if child.get("job"))
        return f"{len(children)} ({busy} busy)"

    @admin.display(description="jobs running now", ordering="running")
    def running_now(self, worker: Worker) -> int:
        return int(getattr(worker, "running", 0))


# Jobs listed on a worker's page.
SHOWN_JOBS = 50


def _alive(worker: Worker) -> bool:
    return fleet.is_alive(worker.last_heartbeat, worker.stopped_at)


def _since(now: datetime.datetime, moment: datetime.datetime | None) -> str:
    return "-" if moment is None else durations.words(now - moment)


def _memory(kb: object) -> str:
    if isinstance(kb, bool) or not isinstance(kb, int):
        return "-"
    return f"{kb / 1024:.1f} MB"


def _job_link(job: object) -> SafeString:
    if not isinstance(job, str) or not job:
        return format_html("{}", "idle")
    return format_html(
        '<a href="{}"><code>{}</code></a>', reverse("admin:djqueue_job_change", args=[job]), job
    )
