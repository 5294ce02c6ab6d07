"""The job list's parts: its filters, its paginator, and the columns it leaves unread."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property

from djqueue.core import registry
from djqueue.db import counts
from djqueue.db.models import Job

# Columns the job list never shows, left unread: each may hold megabytes.
UNLISTED_FIELDS = ("args", "kwargs", "result", "error_message", "traceback", "history", "workflow")


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]
    """Counts an unfiltered job list from the planner's estimate instead of COUNT(*)."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            estimate = counts.estimated_rows(queryset.model._meta.db_table, queryset.db)
            # Below a few thousand rows the estimate is poor and COUNT(*) is cheap.
            if estimate is not None and estimate > 10_000:
                return estimate
        return super().count


class TaskNameFilter(admin.SimpleListFilter):
    """Filter by task, offering registered task names (no DISTINCT over the table)."""

    title = "task"
    parameter_name = "task"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in registry.names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        value = self.value()
        return queryset.filter(task_name=value) if value else queryset


class WindowFilter(admin.DateFieldListFilter):
    """The date filter, which also shows a window it does not offer (the overview links
    to a minute, an hour...) as the selected choice, from and to the second."""

    def choices(self, changelist: Any) -> Any:
        offered = list(super().choices(changelist))
        since = self.date_params.get(self.lookup_kwarg_since)
        if any(choice["selected"] for choice in offered) or not since:
            return offered
        until = self.date_params.get(self.lookup_kwarg_until)
        window = f"{_moment(since)} to {_moment(until) if until else 'now'}"
        current = changelist.get_query_string()
        return [*offered, {"selected": True, "query_string": current, "display": window}]


def _moment(value: str) -> str:
    """A moment from a URL, to the second in the current time zone (as given when it
    is not one)."""
    moment = parse_datetime(value)
    if moment is None:
        return value
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class JobChangeList(ChangeList):
    """The job list, reading only the columns it shows."""

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: list[str | None] | None = None
    ) -> QuerySet[Job]:
        return super().get_queryset(request, exclude_parameters).defer(*UNLISTED_FIELDS)
