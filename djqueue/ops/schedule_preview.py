"""The next runs of a schedule: shown on the pages of periodic tasks and schedules, and
computed again from a form's values while it is edited (docs/periodic.md#the-admin).

A page's "Next runs" field carries the address of its admin's ``preview/`` view; the
page's script sends that view the form's values as they are typed, and shows the runs
(or the error that makes the values unusable) in place of the field.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

from djqueue.beat import entries
from djqueue.core import schedules
from djqueue.db.models import IntervalSchedule, PeriodicTask
from djqueue.ops import durations

# Runs shown.
COUNT = 5
# The form field an edited page's preview names its object by (not a model field).
OBJECT_PARAMETER = "_object"


@dataclass(frozen=True)
class Preview:
    """What a schedule would do: its next runs, or why it cannot run."""

    runs: list[datetime.datetime] = field(default_factory=list)
    error: str = ""
    note: str = ""
    words: str = ""

    def as_json(self, now: datetime.datetime | None = None) -> dict[str, Any]:
        now = now or timezone.now()
        return {
            "schedule": self.words,
            "runs": [
                {"at": run.isoformat(), "text": shown(run, now), "overdue": run < now}
                for run in self.runs
            ],
            "error": self.error,
            "note": self.note,
        }


def upcoming(
    schedule: schedules.Schedule, after: datetime.datetime, count: int = COUNT
) -> list[datetime.datetime]:
    """The first ``count`` slots of ``schedule`` after ``after`` (fewer if it ends)."""
    runs: list[datetime.datetime] = []
    slot: datetime.datetime | None = after
    while slot is not None and len(runs) < count:
        slot = schedule.next_after(slot)
        if slot is not None:
            runs.append(slot)
    return runs


def of_task(row: PeriodicTask) -> Preview:
    """The next runs of a periodic task, from its last run (or its start), as the
    scheduler counts them."""
    if row.schedule_row is None:
        return Preview(note="Choose a schedule to see its next runs.")
    try:
        entry = entries.entry(row)
        words = entry.schedule.describe()
        runs = upcoming(entry.schedule, entry.after, 1 if entry.once else COUNT)
    except ValueError as exc:
        return Preview(error=str(exc))
    note = ""
    if not row.enabled:
        note = "Disabled: none of these runs is sent until it is enabled."
    elif entry.once:
        note = "Runs once, then is disabled."
    elif runs and runs[0] < timezone.now():
        note = "The first is overdue: it is sent as soon as a scheduler leads."
    if not runs:
        note = note or "No run is left."
    return Preview(runs=runs, note=note, words=words)


def of_schedule(row: models.Model) -> Preview:
    """The next runs of a schedule row from now (an interval counted from now; a task
    that uses it counts from its own start)."""
    now = timezone.now()
    try:
        if isinstance(row, IntervalSchedule):
            if not row.every or row.period not in IntervalSchedule.PERIOD_MICROSECONDS:
                return Preview(error="Give a number of periods above 0 and a period.")
            schedule: schedules.Schedule = row.schedule(now)
        else:
            schedule = row.schedule()  # type: ignore[attr-defined]
        return Preview(runs=upcoming(schedule, now), words=schedule.describe())
    except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        return Preview(error=str(exc) or type(exc).__name__)


def shown(moment: datetime.datetime, now: datetime.datetime) -> str:
    """``moment`` to the second in the current time zone, and how far it is from now."""
    exact = durations.moment(moment)
    if moment >= now:
        return f"{exact} (in {timeuntil(moment, now)})"
    return f"{exact} ({timesince(moment, now)} ago)"


def html(preview: Preview, url: str) -> SafeString:
    """The "Next runs" field: the runs, a note or the error, and the preview address."""
    now = timezone.now()
    items = format_html_join("", "<li>{}</li>", ((shown(run, now),) for run in preview.runs))
    return format_html(
        '<div class="djq-next-runs" data-preview-url="{}">'
        '<ol class="djq-runs">{}</ol><p class="djq-note">{}</p>'
        '<p class="djq-error errornote"{}>{}</p></div>',
        url,
        items,
        preview.note,
        "" if preview.error else mark_safe(" hidden"),
        preview.error,
    )


def url(admin: Any, row: models.Model | None) -> str:
    """The preview address of ``admin``'s model, naming ``row`` when it is saved."""
    opts = admin.model._meta
    base = reverse(f"admin:{opts.app_label}_{opts.model_name}_preview")
    if row is None or row.pk is None:
        return base
    return f"{base}?{urlencode({OBJECT_PARAMETER: row.pk})}"


class PreviewsSchedules:
    """A ModelAdmin mixin: a ``preview/`` view answering a form's next runs as JSON.

    The admin says how to preview a row (:meth:`preview_of`); the view binds the
    admin's own form to the values sent, so that they are read as a save would read them.
    """

    # The form fields a schedule is made of: their errors are the preview's.
    preview_fields: tuple[str, ...] = ()

    def preview_of(self, row: Any) -> Preview:
        return of_schedule(row)

    def preview_urls(self) -> list[URLPattern]:
        opts = self.model._meta  # type: ignore[attr-defined]
        view = self.admin_site.admin_view(self.preview_view)  # type: ignore[attr-defined]
        return [path("preview/", view, name=f"{opts.app_label}_{opts.model_name}_preview")]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """The next runs of the schedule the form's values describe, as JSON."""
        admin: Any = self
        if not (admin.has_add_permission(request) or admin.has_change_permission(request)):
            return JsonResponse({"error": "You may not edit these schedules."}, status=403)
        response: HttpResponse = admin.needing_tables_json(self._preview, request)
        return response

    def _preview(self, request: HttpRequest) -> HttpResponse:
        admin: Any = self
        row = self._edited(request)
        form_class = admin.get_form(request, row, change=row is not None)
        form = form_class(request.GET, instance=row)
        form.is_valid()  # fills form.instance with the values that were valid
        problems = [
            f"{form.fields[name].label or name}: {' '.join(errors)}"
            for name, errors in form.errors.items()
            if name in self.preview_fields
        ]
        if problems:
            return JsonResponse(Preview(error=" ".join(problems)).as_json())
        return JsonResponse(self.preview_of(form.instance).as_json())

    @admin.display(description="Next runs")
    def next_runs(self, row: Any) -> SafeString:
        """The "Next runs" field of the page, which its script keeps current."""
        return html(self.preview_of(row), url(self, row))

    def _edited(self, request: HttpRequest) -> models.Model | None:
        """The saved row the form edits (None on an add page, or when it is gone)."""
        pk = request.GET.get(OBJECT_PARAMETER)
        if not pk:
            return None
        admin: Any = self
        try:
            row: models.Model | None = admin.get_object(request, pk)
        except (ValueError, TypeError):
            return None
        return row
