"""The job pages of the admin and its overview. Changes go through the broker only.

Importing this module registers every djqueue admin page: the jobs here, the workers
(:mod:`djqueue.ops.worker_admin`), the queues (:mod:`djqueue.ops.queue_admin`) and the
periodic tasks (:mod:`djqueue.ops.periodic_admin`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from djqueue.core import states, text
from djqueue.db.models import Job, Queue, Worker
from djqueue.ops import access, fleet, job_actions, job_list, job_page, overview, worker_control
from djqueue.ops.admin_base import STATE_COLOURS, ReadOnlyAdmin, coloured, log_entries
from djqueue.ops.job_values import SHOWN_CHARACTERS, SHOWN_IN_A_CELL, pretty
from djqueue.ops.queue_admin import QueueAdmin
from djqueue.ops.worker_admin import WorkerAdmin

# The pages registered on import, re-exported by the documented ``djqueue.admin``.
__all__ = ["JobAdmin", "QueueAdmin", "WorkerAdmin"]

# Seconds between the overview's updates (while its tab is shown and it is live).
REFRESH_SECONDS = 5


@admin.register(Job)
class JobAdmin(job_page.JobPage, job_list.JobList, job_actions.BatchActions, ReadOnlyAdmin):
    fieldsets = [
        (
            None,
            {"fields": ["id", "task_name", "coloured_state", "progress_bar", "queue", "priority"]},
        ),
        ("Call", {"fields": ["arguments", "keyword_arguments", "workflow_links"]}),
        ("Outcome", {"fields": ["outcome", "error_type", "error_text", "formatted_traceback"]}),
        (
            "Timing and attempts",
            {
                "fields": [
                    "enqueued_at",
                    "eta",
                    "expires_at",
                    "started_at",
                    "finished_at",
                    "runtime",
                    "attempt",
                    "retries",
                    "max_attempts",
                    "worker",
                    "lease_expires_at",
                    "attempts",
                ]
            },
        ),
    ]
    readonly_fields = [
        *(field.name for field in Job._meta.fields),
        "coloured_state",
        "runtime",
        "arguments",
        "keyword_arguments",
        "outcome",
        "error_text",
        "formatted_traceback",
        "progress_bar",
        "workflow_links",
        "attempts",
    ]

    # Actions: each has its own permission (ops.access); the admin sends them as
    # CSRF-protected POSTs.

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.REVOKE)

    def has_terminate_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.TERMINATE)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.RETRY)

    def has_delete_finished_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.DELETE_JOBS)

    @admin.display(description="workflow")
    def workflow_links(self, job: Job) -> SafeString:
        """The workflow the job belongs to (docs/canvas.md): its parent, the jobs it
        starts next, its group and chord; "-" for a plain job."""
        flow = job.workflow or {}
        links = [("parent", flow.get("parent"))]
        links += [("next", step.get("id")) for step in flow.get("next", [])]
        shown = [
            (label, reverse("admin:djqueue_job_change", args=[value]), value)
            for label, value in links
            if value
        ]
        rows = format_html_join(" ", '{} <a href="{}">{}</a>', shown)
        labels = {"group": "in group", "chord": "header of chord", "body_of": "body of chord"}
        groups = [(label, flow[key]) for key, label in labels.items() if flow.get(key)]
        if not shown and not groups:
            return format_html("{}", "-")
        return format_html("{} {}", rows, format_html_join(" ", "{} {}", groups))

    @admin.display(description="progress")
    def progress_bar(self, job: Job) -> SafeString:
        # update_state's meta may be any JSON value; only a dict can carry a progress.
        progress = job.progress if isinstance(job.progress, dict) else {}
        current, total = progress.get("current"), progress.get("total")
        if job.state != states.STARTED or current is None:
            return format_html("{}", "-")
        message = text.shortened(str(progress.get("message", "")), SHOWN_IN_A_CELL)
        if total:
            return format_html(
                '<progress value="{}" max="{}"></progress> {} / {} {}',
                current,
                total,
                current,
                total,
                message,
            )
        return format_html("{} {}", current, message)

    @admin.display(description="state", ordering="state")
    def coloured_state(self, job: Job) -> SafeString:
        return coloured(STATE_COLOURS.get(job.state, "#000000"), job.state)

    @admin.display(description="runtime")
    def runtime(self, job: Job) -> str:
        if job.started_at is None or job.finished_at is None:
            return "-"
        return f"{(job.finished_at - job.started_at).total_seconds():.3f} s"

    @admin.display(description="args")
    def arguments(self, job: Job) -> SafeString:
        return pretty(job.args)

    @admin.display(description="kwargs")
    def keyword_arguments(self, job: Job) -> SafeString:
        return pretty(job.kwargs)

    @admin.display(description="result")
    def outcome(self, job: Job) -> SafeString:
        return pretty(job.result) if job.state == states.SUCCESS else format_html("{}", "-")

    @admin.display(description="error message")
    def error_text(self, job: Job) -> SafeString:
        return format_html(
            '<div style="white-space: pre-wrap">{}</div>',
            text.shortened(job.error_message, SHOWN_CHARACTERS) or "-",
        )

    def get_urls(self) -> list[URLPattern]:
        overview = path(
            "dashboard/",
            self.admin_site.admin_view(self.overview_view),
            name="djqueue_dashboard",
        )
        data = path(
            "dashboard/data/",
            self.admin_site.admin_view(self.overview_data),
            name="djqueue_overview_data",
        )
        fleet_path = path(
            "dashboard/fleet/",
            self.admin_site.admin_view(self.fleet_view),
            name="djqueue_fleet",
        )
        return [overview, data, fleet_path, *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """The overview: alerts, figures, charts and queues, updated in place."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self.needing_tables(request, self._overview, request)

    def _overview(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Task queue overview",
            "opts": self.model._meta,
            "refresh_seconds": REFRESH_SECONDS,
            "data_url": reverse("admin:djqueue_overview_data"),
            "overview": overview.build(request, _range(request)),
            "may_pause": access.may(request.user, access.PAUSE),
            "may_control": access.may(request.user, access.CONTROL_WORKERS),
            "most_slots": worker_control.MOST_SLOTS,
        }
        return TemplateResponse(request, "djqueue/admin/overview.html", context)

    def fleet_view(self, request: HttpRequest) -> HttpResponse:
        """The overview's fleet controls (a POST): every queue paused or resumed, every
        live worker's pool resized or the worker shut down; each with its permission."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        command = request.POST.get("command", "")
        if command in fleet.QUEUE_COMMANDS:
            if not access.may(request.user, access.PAUSE):
                raise PermissionDenied("Pausing and resuming queues needs djqueue.pause_queue.")
            result = fleet.set_all_paused(command == "pause_all")
            rows: Any = Queue.objects.filter(name__in=result.queues)
        elif command in fleet.WORKER_COMMANDS:
            if not access.may(request.user, access.CONTROL_WORKERS):
                raise PermissionDenied("Controlling workers needs djqueue.control_worker.")
            try:
                result = fleet.command_workers(request.POST)
            except fleet.Refused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return redirect("admin:djqueue_dashboard")
            rows = Worker.objects.filter(name__in=result.workers)
        else:
            self.message_user(request, f"Unknown command {command!r}.", messages.ERROR)
            return redirect("admin:djqueue_dashboard")
        log_entries(request, rows, CHANGE, result.message)
        self.message_user(
            request, result.message, messages.SUCCESS if result.ok else messages.WARNING
        )
        return redirect("admin:djqueue_dashboard")

    def overview_data(self, request: HttpRequest) -> HttpResponse:
        """The overview's figures as JSON, for its script to update the page in place."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not view jobs."}, status=403)
        return self.needing_tables_json(
            lambda: JsonResponse(overview.build(request, _range(request)))
        )


def _range(request: HttpRequest) -> str:
    """The range asked for in ``?range=`` (hour, day, week); an unknown one is the hour."""
    asked = request.GET.get("range", overview.DEFAULT_RANGE)
    return asked if asked in overview.RANGES else overview.DEFAULT_RANGE


from djqueue.ops import periodic_admin  # noqa: E402, F401  (registers the periodic task pages)
