"""Admin pages for periodic tasks and their schedules.

Every edit wakes the running scheduler (the models' save and delete signals, and the
enable/disable actions, send a notification), so it takes effect without a restart.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import URLPattern, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from djqueue.beat import entries
from djqueue.core import ids
from djqueue.db import periodic
from djqueue.db.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    Job,
    PeriodicRun,
    PeriodicTask,
    SolarSchedule,
)
from djqueue.ops import access, admin_tables, run_guard, schedule_preview
from djqueue.ops.admin_base import STATE_COLOURS, coloured
from djqueue.ops.periodic_forms import PeriodicTaskForm

# Runs listed on a periodic task's page.
RECENT_RUNS = 10


class ScheduleStateAdmin(schedule_preview.PreviewsSchedules, admin_tables.NeedsTables):
    """Saves and deletes through :mod:`djqueue.db.periodic`, which owns schedule state.

    Its forms refuse an edit that would make a task run at once from a user who may not
    run tasks now (:mod:`djqueue.ops.run_guard`). Its pages show the next runs, kept
    current while the form is edited (:mod:`djqueue.ops.schedule_preview`).
    """

    form = run_guard.GuardedForm
    readonly_fields: ClassVar[tuple[str, ...]] = ("next_runs",)

    class Media:
        js = ("djqueue/schedule_preview.js",)
        css = {"all": ("djqueue/schedule_preview.css",)}

    def get_urls(self) -> list[URLPattern]:
        return [*self.preview_urls(), *super().get_urls()]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return run_guard.with_permission(form, request)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs.setdefault("form", run_guard.GuardedForm)
        form = super().get_changelist_form(request, **kwargs)
        return run_guard.with_permission(form, request)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        periodic.save(obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        periodic.delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        periodic.delete_rows(queryset)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(ScheduleStateAdmin):
    """Periodic tasks: schedule in words, next and last run, toggles and "run now"."""

    form = PeriodicTaskForm
    list_display = (
        "name",
        "enabled",
        "task",
        "schedule_words",
        "next_run",
        "last_run_at",
        "last_outcome",
        "total_run_count",
        "from_settings",
    )
    list_display_links = ("name",)
    list_editable = ("enabled",)
    list_filter = ("enabled", "from_settings", "catch_up")
    list_select_related = ("interval", "crontab", "solar", "clocked")
    search_fields = ("name", "task", "description")
    readonly_fields = (
        "next_runs",
        "last_run_at",
        "total_run_count",
        "from_settings",
        "date_changed",
        "recent_runs",
    )
    preview_fields = ("interval", "crontab", "solar", "clocked", "start_time", "one_off", "enabled")
    actions = ["run_now", "enable", "disable"]
    fieldsets = (
        (None, {"fields": ("name", "task", "enabled", "description")}),
        (
            "Schedule (exactly one)",
            {
                "fields": (
                    "interval",
                    "crontab",
                    "solar",
                    "clocked",
                    "start_time",
                    "one_off",
                    "next_runs",
                )
            },
        ),
        ("Arguments", {"fields": ("args", "kwargs")}),
        (
            "Sending",
            {"fields": ("queue", "priority", "expires", "expire_seconds", "catch_up")},
        ),
        (
            "Runs",
            {
                "fields": (
                    "last_run_at",
                    "total_run_count",
                    "recent_runs",
                    "from_settings",
                    "date_changed",
                )
            },
        ),
    )

    @admin.display(description="Schedule")
    def schedule_words(self, obj: PeriodicTask) -> str:
        try:
            return obj.schedule().describe()
        except ValueError as exc:
            return f"invalid: {exc}"

    @admin.display(description="Next run")
    def next_run(self, obj: PeriodicTask) -> datetime.datetime | None:
        moment = entries.next_run(obj)
        return None if moment is None else _shown(moment)

    def preview_of(self, row: Any) -> schedule_preview.Preview:
        return schedule_preview.of_task(row)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PeriodicTask]:
        # The state of each task's latest run's job, for the list: two index lookups
        # per row (the run by (task, slot), the job by its id), never a scan.
        latest = PeriodicRun.objects.filter(periodic_task=OuterRef("pk")).order_by("-slot")
        queryset: QuerySet[PeriodicTask] = super().get_queryset(request)
        queryset = queryset.annotate(last_job=Subquery(latest.values("job_id")[:1]))
        state = Job.objects.filter(pk=OuterRef("last_job")).values("state")[:1]
        return queryset.annotate(last_state=Subquery(state))

    @admin.display(description="Last outcome")
    def last_outcome(self, obj: PeriodicTask) -> SafeString:
        job_id = getattr(obj, "last_job", None)
        if job_id is None:
            return format_html("{}", "-")
        return _job_link(job_id, getattr(obj, "last_state", None))

    @admin.display(description="Recent runs")
    def recent_runs(self, obj: PeriodicTask) -> SafeString:
        """The latest runs, newest first: the slot, the outcome of its job, a link."""
        runs = list(obj.runs.order_by("-slot")[:RECENT_RUNS]) if obj.pk else []
        if not runs:
            return format_html("{}", "-")
        found = Job.objects.filter(pk__in=[run.job_id for run in runs]).values_list(
            "id", "state", "finished_at"
        )
        jobs = {job_id: (state, finished) for job_id, state, finished in found}
        rows = []
        for run in runs:
            state, finished = jobs.get(run.job_id, (None, None))
            ended = date_format(_shown(finished), "Y-m-d H:i:s") if finished else ""
            rows.append(
                (
                    date_format(_shown(run.slot), "Y-m-d H:i:s"),
                    _job_link(run.job_id, state),
                    f"ended {ended}" if ended else "",
                )
            )
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        return format_html(
            '<table class="djq-recent-runs"><thead><tr><th>slot</th><th>job</th>'
            "<th></th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def has_run_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.RUN_PERIODIC)

    @admin.action(description="Run selected periodic tasks now", permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        sent = 0
        for row in queryset.select_related("interval", "crontab", "solar", "clocked"):
            try:
                job_id = entries.run_now(row)
            except (entries.EntryError, ValueError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.log_change(request, row, f"Ran now: sent job {job_id}.")
            sent += 1
        if sent:
            self.message_user(request, f"Sent {sent} periodic task(s) now.", messages.SUCCESS)

    @admin.action(description="Enable selected periodic tasks", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected periodic tasks", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[PeriodicTask], enabled: bool
    ) -> None:
        if enabled and not self.has_run_permission(request):
            queryset = self._not_made_due(request, queryset)
        rows = periodic.set_enabled(queryset, enabled)
        for row in rows:
            self.log_change(request, row, [{"changed": {"fields": ["Enabled"]}}])
        word = "Enabled" if enabled else "Disabled"
        self.message_user(request, f"{word} {len(rows)} periodic task(s).", messages.SUCCESS)

    def _not_made_due(
        self, request: HttpRequest, queryset: QuerySet[PeriodicTask]
    ) -> QuerySet[PeriodicTask]:
        """``queryset`` without the disabled tasks that enabling would run at once."""
        held = []
        for row in queryset.filter(enabled=False).select_related(
            *run_guard.SCHEDULE_FIELDS.values()
        ):
            row.enabled = True
            try:
                if run_guard.due_at_once(row):
                    held.append(row)
            except ValueError:
                continue
        if held:
            names = ", ".join(repr(row.name) for row in held)
            self.message_user(request, run_guard.MESSAGE.format(names=names), messages.ERROR)
        return queryset.exclude(pk__in=[row.pk for row in held])


def _job_link(job_id: Any, state: str | None) -> SafeString:
    """A run's job: its state in its colour (or "pruned" when the row is gone) and a
    link to its page."""
    link = reverse("admin:djqueue_job_change", args=[job_id])
    if state is None:
        return format_html('<a href="{}">{}</a> {}', link, ids.short(job_id), "(job pruned)")
    return format_html(
        '<a href="{}">{} {}</a>',
        link,
        coloured(STATE_COLOURS.get(state, "#000000"), state),
        ids.short(job_id),
    )


def _shown(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as the admin shows times: local, and naive when USE_TZ is off."""
    if not settings.USE_TZ:
        return timezone.make_naive(moment, timezone.get_default_timezone())
    return timezone.localtime(moment)


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(ScheduleStateAdmin):
    list_display = ("__str__", "every", "period")
    preview_fields = ("every", "period")


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(ScheduleStateAdmin):
    list_display = (
        "__str__",
        "minute",
        "hour",
        "day_of_month",
        "month_of_year",
        "day_of_week",
        "timezone",
    )
    preview_fields = (
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "month_of_year",
        "timezone",
    )


@admin.register(SolarSchedule)
class SolarScheduleAdmin(ScheduleStateAdmin):
    list_display = ("__str__", "event", "latitude", "longitude")
    preview_fields = ("event", "latitude", "longitude")


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(ScheduleStateAdmin):
    list_display = ("__str__", "clocked_time")
    preview_fields = ("clocked_time",)
