"""Edits that would make a periodic task run at once need the "run now" permission.

Pointing a task at a clocked time in the past, enabling a task whose next run is
overdue, or shortening an interval so that the next run falls in the past all send the
task's job as soon as the scheduler looks: the same as "Run now", so they need the same
``djqueue.run_periodictask``. An edit that leaves an already overdue task overdue is
allowed (the task would run anyway).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Model
from django.utils import timezone

from djqueue.beat import entries
from djqueue.core import conf
from djqueue.db.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from djqueue.ops import access

# The periodic task's field that points at each kind of schedule.
SCHEDULE_FIELDS: dict[type[Model], str] = {
    IntervalSchedule: "interval",
    CrontabSchedule: "crontab",
    SolarSchedule: "solar",
    ClockedSchedule: "clocked",
}
MESSAGE = (
    "This change would make {names} run at once (the next run would be in the past), "
    "which is what 'Run now' does: it needs the permission djqueue.run_periodictask. "
    "Choose a schedule whose next run is in the future, or ask someone who holds it."
)


def due_at_once(row: PeriodicTask) -> bool:
    """Whether ``row``, as it is in memory, would be sent as soon as a scheduler looks."""
    moment = entries.next_run(row)
    return moment is not None and moment <= timezone.now()


def stored(row: PeriodicTask) -> PeriodicTask | None:
    """``row`` as the database holds it now (None for a new row)."""
    if row._state.adding:
        return None
    tasks = PeriodicTask.objects.using(conf.database())
    return tasks.select_related(*SCHEDULE_FIELDS.values()).filter(pk=row.pk).first()


def made_due(row: PeriodicTask) -> bool:
    """Whether saving ``row`` makes it due at once when it was not before."""
    before = stored(row)
    return due_at_once(row) and (before is None or not due_at_once(before))


def tasks_made_due(schedule: Model) -> list[str]:
    """Names of enabled tasks on ``schedule`` that its edit would make due at once."""
    field = SCHEDULE_FIELDS[type(schedule)]
    if schedule.pk is None:
        return []
    rows = PeriodicTask.objects.using(conf.database()).filter(enabled=True, **{field: schedule.pk})
    names = []
    for row in rows.select_related(*SCHEDULE_FIELDS.values()):
        was_due = due_at_once(row)
        setattr(row, field, schedule)
        if due_at_once(row) and not was_due:
            names.append(row.name)
    return names


class GuardedForm(forms.ModelForm):  # type: ignore[type-arg]
    """A periodic task or schedule form that refuses edits amounting to "run now"
    unless ``may_run_now`` (set per request by the admin)."""

    may_run_now = True

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # the instance now holds the submitted values
        if self.may_run_now or self.errors:
            return
        names = self._made_due()
        if names:
            self.add_error(None, MESSAGE.format(names=", ".join(repr(n) for n in names)))

    def _made_due(self) -> list[str]:
        instance: Any = self.instance
        if isinstance(instance, PeriodicTask):
            try:
                return [instance.name] if made_due(instance) else []
            except ValueError:  # an invalid schedule: the model's own check says so
                return []
        return tasks_made_due(instance)


def with_permission(form: type[forms.ModelForm], request: Any) -> type[forms.ModelForm]:  # type: ignore[type-arg]
    """``form`` that knows whether the requesting user may run tasks now."""
    allowed = access.may(request.user, access.RUN_PERIODIC)
    return type(form.__name__, (form,), {"may_run_now": allowed})
