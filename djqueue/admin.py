"""Read-only admin pages for jobs and workers. Changes go through the broker only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from djqueue import charts, stats
from djqueue.models import Job, Worker

DASHBOARD_HOURS = 3
TASK_HOURS = 1
REFRESH_SECONDS = 10


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Shows rows; adding, editing and deleting are left to the broker."""

    # No full COUNT(*) on every page load: the job table can hold millions of rows.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "task_name",
        "state",
        "queue",
        "priority",
        "attempt",
        "enqueued_at",
        "started_at",
        "finished_at",
        "worker",
    )
    list_filter = ("state", "queue")
    search_fields = ("=id", "task_name")
    ordering = ("-id",)
    readonly_fields = [field.name for field in Job._meta.fields]

    def get_urls(self) -> list[URLPattern]:
        dashboard = path(
            "dashboard/",
            self.admin_site.admin_view(self.dashboard_view),
            name="djqueue_dashboard",
        )
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Queue depths, throughput, task figures and live workers on one page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        minutes = stats.throughput(DASHBOARD_HOURS)
        chart = charts.line_chart(
            [timezone.localtime(m.at).strftime("%H:%M") for m in minutes],
            [
                charts.Series("succeeded", "#417690", [m.succeeded for m in minutes]),
                charts.Series("failed", "#ba2121", [m.failed for m in minutes]),
            ],
            title="Jobs finished per minute",
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Task queue dashboard",
            "opts": self.model._meta,
            "now": timezone.now(),
            "hours": DASHBOARD_HOURS,
            "task_hours": TASK_HOURS,
            "refresh_seconds": REFRESH_SECONDS,
            "chart": chart,
            "queues": stats.queue_depths(),
            "tasks": stats.task_figures(TASK_HOURS),
            "workers": stats.live_workers(),
        }
        return TemplateResponse(request, "djqueue/admin/dashboard.html", context)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "pool",
        "concurrency",
        "queues",
        "started_at",
        "last_heartbeat",
        "stopped_at",
        "jobs_done",
    )
    ordering = ("-last_heartbeat",)
    readonly_fields = [field.name for field in Worker._meta.fields]
