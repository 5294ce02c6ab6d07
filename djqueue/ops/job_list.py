"""The admin's job list (docs/monitoring.md#the-job-list): dense columns, filters that
stay cheap on a big table, search through :mod:`djqueue.db.search`, and a count that
never reads more than COUNT_LIMIT rows."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from djqueue.core import conf, ids, registry, states
from djqueue.db import counts, fleet, search, series
from djqueue.db.models import Job, Queue, Worker
from djqueue.ops import job_window, stats
from djqueue.ops.durations import ago, duration

# Columns the job list never shows, left unread: each may hold megabytes.
UNLISTED_FIELDS = ("args", "kwargs", "result", "error_message", "traceback", "history", "workflow")
# A filtered list counts at most this many jobs (and says "more than" beyond): counting
# every failure of a table of ten million jobs would take seconds on each page.
COUNT_LIMIT = 10_000
# The queue filter offers the queues that had jobs within this window.
RECENT_QUEUES = datetime.timedelta(hours=1)
# Workers offered by the worker filter: the ones heard from last.
OFFERED_WORKERS = 30

# Label backgrounds: darker shades of admin_base.STATE_COLOURS, for white text to read.
STATE_COLOURS = {
    states.PENDING: "#417690",
    states.RECEIVED: "#8a6d00",
    states.STARTED: "#b26b00",
    states.RETRY: "#a85d00",
    states.SUCCESS: "#2e7d32",
    states.FAILURE: "#ba2121",
    states.REVOKED: "#666666",
    states.REJECTED: "#7b3f6e",
    states.IGNORED: "#808080",
}


class JobPaginator(Paginator):  # type: ignore[type-arg]
    """Counts an unfiltered list from the planner's estimate, and a filtered one up to
    COUNT_LIMIT + 1 rows (``more`` says whether there were more), or from the planner's
    estimate when counting that far would read too much (``estimated``). Pages go as far
    as COUNT_LIMIT jobs: older ones are reached by filters and windows, not by an
    OFFSET that reads every job before them."""

    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if not queryset.query.where:
            estimate = counts.estimated_rows(queryset.model._meta.db_table, queryset.db)
            # Below a few thousand rows the estimate is poor and COUNT(*) is cheap.
            if estimate is not None and estimate > COUNT_LIMIT:
                self.estimated = True
                return estimate
        bounded = queryset.order_by()[: COUNT_LIMIT + 1]
        if queryset.query.where and job_window.costly(bounded):
            estimate = counts.plan(queryset.order_by()).rows
            if estimate > COUNT_LIMIT:
                self.estimated = True
                return estimate
        return int(bounded.count())

    @cached_property
    def num_pages(self) -> int:
        # Page 1 always exists: Django answers a page past num_pages with an error page.
        return max(1, min(super().num_pages, COUNT_LIMIT // self.per_page))

    @property
    def more(self) -> bool:
        """Whether the count stopped at its limit (more jobs match)."""
        queryset = self.object_list
        filtered = isinstance(queryset, QuerySet) and bool(queryset.query.where)
        return filtered and not self.estimated and self.count > COUNT_LIMIT

    @property
    def shown_count(self) -> str:
        """The count as the page shows it: "1,234", "10,000+" past the limit, "about
        1,230,000" from an estimate."""
        if self.estimated:
            return f"about {_rounded(self.count):,}"
        return f"{COUNT_LIMIT:,}+" if self.more else f"{self.count:,}"


def _rounded(estimate: int) -> int:
    """An estimate to three significant digits (it is not exact)."""
    return round(estimate, -max(len(str(estimate)) - 3, 0))


class JobChangeList(ChangeList):
    """The job list, reading only the columns it shows, and looking at a window of the
    newest jobs when a filter no index serves would read the whole table
    (:mod:`djqueue.ops.job_window`)."""

    window: job_window.Window | None = None

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: list[str | None] | None = None
    ) -> QuerySet[Job]:
        return super().get_queryset(request, exclude_parameters).defer(*UNLISTED_FIELDS)

    def get_results(self, request: HttpRequest) -> None:
        # Only the page shown is windowed: batch actions on everything the filter
        # matches read get_queryset, all of it.
        shown = self.queryset
        if not shown.query.where:
            super().get_results(request)
            return
        # An enqueued window that ended a while ago: its matches are where its ids end,
        # which the planner cannot know (it takes them for spread over the table).
        ended = job_window.sent_before(request.GET.get("enqueued_at__lt"))
        now = job_window.sent_before(timezone.now())
        long_ago = ended is not None and now is not None and ended < now
        if not long_ago and not job_window.costly(shown[: self.list_per_page]):
            # The planner may be wrong (matches it takes for spread over the table may
            # all be old): the page and its count get PAGE_MILLISECONDS, then a window.
            with counts.time_limit(shown.db, job_window.PAGE_MILLISECONDS) as limit:
                super().get_results(request)
                self.result_list = list(self.result_list)
            if not limit.exceeded:
                return
        before = job_window.before(request.GET.get(job_window.BEFORE))
        if before is None:
            # An enqueued window that ended long ago: the first window ends there too.
            before = ended
        self.window = job_window.window(shown.db, before)
        if self.window is not None:
            self.queryset = shown.filter(id__gte=self.window.oldest)
            if before is not None:
                self.queryset = self.queryset.filter(id__lt=before)
        super().get_results(request)

    def window_size(self) -> str:
        return f"{job_window.WINDOW:,}"

    def window_before(self) -> str:
        """When the window's jobs were sent before, or the short id they come before
        ("" for the newest)."""
        if self.window is None or self.window.before is None:
            return ""
        sent = job_window.sent_at(self.window.before)
        if sent is None:
            return f"…{ids.short(self.window.before)}"
        return timezone.localtime(sent).strftime("%Y-%m-%d %H:%M:%S")

    def older_url(self) -> str:
        """The list of the window before this one."""
        if self.window is None:
            return ""
        return self.get_query_string(
            {job_window.BEFORE: str(self.window.oldest)}, remove=[PAGE_VAR]
        )


class _NamedFilter(admin.SimpleListFilter):
    """A filter on one column by name, offering the names a cheap read finds, and the
    chosen one even when that read does not find it (a link may name any)."""

    field = ""

    def names(self) -> set[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        chosen = {value} if value else set()
        return [(name, name) for name in sorted(self.names() | chosen)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.field: value})


class TaskFilter(_NamedFilter):
    """By task: the registered task names (no DISTINCT over the table)."""

    title = "task"
    parameter_name = "task"
    field = "task_name"

    def names(self) -> set[str]:
        return set(registry.names())


class QueueFilter(_NamedFilter):
    """By queue: those the time series saw with jobs in the last RECENT_QUEUES, those
    with a row (paused or limited), and those a live worker serves (no read of the jobs
    table: on a big one, even its waiting jobs are many)."""

    title = "queue"
    parameter_name = "queue__exact"
    field = "queue"

    def names(self) -> set[str]:
        served = fleet.serving(stats.live_workers())
        recent = series.recent_queues(timezone.now() - RECENT_QUEUES)
        known = Queue.objects.using(conf.database()).values_list("name", flat=True)
        return recent | set(known) | set(served)


class WorkerFilter(_NamedFilter):
    """By worker: the workers heard from last."""

    title = "worker"
    parameter_name = "worker__exact"
    field = "worker"

    def names(self) -> set[str]:
        latest = Worker.objects.using(conf.database()).order_by("-last_heartbeat")
        return set(latest.values_list("name", flat=True)[:OFFERED_WORKERS])


class WindowFilter(admin.DateFieldListFilter):
    """A date filter that also shows a window it does not offer (the overview links to
    a minute, an hour...) as the chosen one, from and to the second."""

    def choices(self, changelist: Any) -> Any:
        offered = list(super().choices(changelist))
        since = self.date_params.get(self.lookup_kwarg_since)
        if any(choice["selected"] for choice in offered) or not since:
            return offered
        until = self.date_params.get(self.lookup_kwarg_until)
        window = f"{_moment(since)} to {_moment(until) if until else 'now'}"
        current = changelist.get_query_string()
        return [*offered, {"selected": True, "query_string": current, "display": window}]


def _moment(value: Any) -> str:
    """A moment from a URL, to the second in the current time zone."""
    if isinstance(value, list):
        value = value[-1]
    moment = parse_datetime(str(value))
    if moment is None:
        return str(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class JobList(admin.ModelAdmin):  # type: ignore[type-arg]
    """The job list's columns, filters, search and count, for the job admin."""

    list_display = (
        "job_id",
        "task",
        "state_badge",
        "queue_name",
        "attempt",
        "enqueued",
        "started",
        "finished",
        "took",
        "worker_name",
    )
    list_display_links = None
    list_filter = (
        "state",
        QueueFilter,
        TaskFilter,
        WorkerFilter,
        ("enqueued_at", WindowFilter),
        ("finished_at", WindowFilter),
        job_window.OlderFilter,
    )
    search_fields = ("id",)  # shows the search box; see get_search_results
    search_help_text = (
        "A job id or its start, an argument value, name=value for a keyword argument, "
        "or text of an error."
    )
    ordering = ("-id",)
    list_per_page = 100
    paginator = JobPaginator
    show_full_result_count = False
    # Counts beside every filter choice would count the whole table once per choice.
    show_facets = admin.ShowFacets.NEVER

    class Media:
        css = {"all": ("djqueue/job_list.css",)}
        js = ("djqueue/job_list.js",)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return JobChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        # Ids, argument values, error text and task names, each through an index
        # (djqueue.db.search); the admin's own search would read the whole table.
        return search.filtered(queryset, search_term), False

    @admin.display(description="id", ordering="id")
    def job_id(self, job: Job) -> SafeString:
        full = str(job.id)
        return format_html(
            '<span class="djq-id"><a href="{}" title="{}"><code>…{}</code></a>'
            '<button type="button" class="djq-copy" data-copy="{}" title="Copy the id {}">'
            "copy</button></span>",
            reverse("admin:djqueue_job_change", args=[job.pk]),
            full,
            ids.short(full),
            full,
            full,
        )

    @admin.display(description="task", ordering="task_name")
    def task(self, job: Job) -> SafeString:
        return _cut(job.task_name)

    @admin.display(description="state", ordering="state")
    def state_badge(self, job: Job) -> SafeString:
        """The state as a coloured label; under it, a running job's progress."""
        badge = format_html(
            '<span class="djq-state" style="background-color: {}">{}</span>',
            STATE_COLOURS.get(job.state, "#000000"),
            job.state,
        )
        if job.state != states.STARTED or not job.progress:
            return badge
        return format_html('{}<div class="djq-progress">{}</div>', badge, _progress(job))

    @admin.display(description="queue", ordering="queue")
    def queue_name(self, job: Job) -> SafeString:
        return _cut(job.queue)

    @admin.display(description="worker", ordering="worker")
    def worker_name(self, job: Job) -> SafeString:
        return _cut(job.worker) if job.worker else format_html("{}", "-")

    @admin.display(description="enqueued", ordering="id")
    def enqueued(self, job: Job) -> SafeString:
        return when(job.enqueued_at)

    @admin.display(description="started", ordering="started_at")
    def started(self, job: Job) -> SafeString:
        return when(job.started_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, job: Job) -> SafeString:
        return when(job.finished_at)

    @admin.display(description="runtime")
    def took(self, job: Job) -> str:
        if job.started_at is None or job.finished_at is None:
            return "-"
        return duration((job.finished_at - job.started_at).total_seconds())


def _progress(job: Job) -> SafeString:
    """The progress a running task reported (its message is on the job's page)."""
    # update_state's meta may be any JSON value; only a dict can carry a progress.
    progress = job.progress if isinstance(job.progress, dict) else {}
    current, total = progress.get("current"), progress.get("total")
    if current is None:
        return format_html("{}", "")
    if total:
        return format_html(
            '<progress value="{}" max="{}"></progress> {}/{}', current, total, current, total
        )
    return format_html("{}", current)


def _cut(name: str) -> SafeString:
    """A name on one line, cut with an ellipsis when long (the whole of it on hover)."""
    return format_html('<span class="djq-cut" title="{}">{}</span>', name, name)


def when(moment: datetime.datetime | None, now: datetime.datetime | None = None) -> SafeString:
    """``moment`` to the second, in the current time zone, and how long ago (or in how
    long) it is."""
    if moment is None:
        return format_html("{}", "-")
    now = now or timezone.now()
    local, today = (timezone.localtime(t) if timezone.is_aware(t) else t for t in (moment, now))
    # To the second; the date only when it is not today's, the year when not this one's.
    shown = "%H:%M:%S"
    if local.date() != today.date():
        shown = "%m-%d " + shown if local.year == today.year else "%Y-%m-%d " + shown
    return format_html(
        '<time datetime="{}" title="{}">{}</time><span class="djq-ago">{}</span>',
        moment.isoformat(),
        local.isoformat(sep=" "),
        local.strftime(shown),
        ago((now - moment).total_seconds()),
    )
