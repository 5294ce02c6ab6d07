"""Read-only admin pages for jobs and workers. Changes go through the broker only."""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from djqueue.core import codec, conf, ids, registry, states, text
from djqueue.db import broker, counts
from djqueue.db.models import Job, Queue, Worker
from djqueue.ops import access, admin_tables, overview

# Seconds between the overview's updates (while its tab is shown and it is live).
REFRESH_SECONDS = 5
# Characters of one value (args, kwargs, result, error message, traceback) shown on a
# page: a row may hold megabytes, and a page should not.
SHOWN_CHARACTERS = 10_000
# An attempt's error in the attempts table, and a progress message on the list.
SHOWN_IN_A_CELL = 1_000
# Attempts listed on a job page (the latest ones).
SHOWN_ATTEMPTS = 100
# Columns the job list never shows, left unread: each may hold megabytes.
UNLISTED_FIELDS = ("args", "kwargs", "result", "error_message", "traceback", "history", "workflow")
UNDECODED_NOTE = (
    "Part of this could not be decoded (a malformed tagged value, or JSON nested too "
    "deeply): it is shown as stored."
)


STATE_COLOURS = {
    states.PENDING: "#79aec8",
    states.RECEIVED: "#b59b3a",
    states.STARTED: "#e0a800",
    states.RETRY: "#d98c00",
    states.SUCCESS: "#3a7d44",
    states.FAILURE: "#ba2121",
    states.REVOKED: "#777777",
    states.REJECTED: "#8a4f7d",
    states.IGNORED: "#999999",
}


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


class ReadOnlyAdmin(admin_tables.NeedsTables):
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
        "coloured_state",
        "queue",
        "priority",
        "attempt",
        "enqueued_at",
        "started_at",
        "finished_at",
        "runtime",
        "progress_bar",
        "worker",
    )
    list_filter = (
        "state",
        "queue",
        TaskNameFilter,
        ("enqueued_at", admin.DateFieldListFilter),
        ("finished_at", WindowFilter),
    )
    actions = ["revoke_jobs", "terminate_jobs", "retry_failed_jobs", "delete_finished_jobs"]
    search_fields = ("id", "task_name")  # see get_search_results
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
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

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return JobChangeList

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

    @admin.action(description="Revoke selected jobs (those not started)", permissions=["revoke"])
    def revoke_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        done = [job_id for job_id in ids if broker.revoke(job_id)]
        self._log(request, done, "Revoked")
        self.message_user(
            request,
            f"Revoked {len(done)} of {len(ids)} selected job(s). Jobs already running "
            "are left to finish: Terminate stops them.",
        )

    @admin.action(
        description="Terminate selected jobs (stop running ones)", permissions=["terminate"]
    )
    def terminate_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        done = [job_id for job_id in ids if broker.revoke(job_id, terminate=True)]
        self._log(request, done, "Revoked; running ones asked to stop")
        self.message_user(request, f"Revoked or stopped {len(done)} of {len(ids)} selected job(s).")

    @admin.action(description="Retry selected failed jobs", permissions=["retry"])
    def retry_failed_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        ids = list(queryset.filter(state=states.FAILURE).values_list("id", flat=True))
        count = broker.retry_failed(ids)
        self._log(request, ids, "Queued again as a new attempt")
        self.message_user(request, f"Queued {count} failed job(s) again.")

    @admin.action(description="Delete selected finished jobs", permissions=["delete_finished"])
    def delete_finished_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        finished = queryset.filter(state__in=states.READY)
        ids = list(finished.values_list("id", flat=True))
        self._log(request, ids, "Deleted", flag=DELETION)
        count = broker.delete_finished(ids)
        self.message_user(request, f"Deleted {count} finished job(s).")

    def _log(
        self, request: HttpRequest, job_ids: list[uuid.UUID], message: str, flag: int = CHANGE
    ) -> None:
        """One admin log entry per job, written in bulk."""
        if job_ids:
            jobs = Job.objects.using(conf.database()).filter(pk__in=job_ids)
            _log_entries(request, jobs, flag, message)

    @admin.display(description="workflow")
    def workflow_links(self, job: Job) -> SafeString:
        """The workflow the job belongs to (docs/canvas.md): its parent, the jobs it
        starts next, its group and chord; "-" for a plain job."""
        from django.urls import reverse
        from django.utils.html import format_html_join

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

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        # A job id is looked up by primary key (the admin's own "=id" search compares
        # text and reads the whole table); other words search task names.
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=ids.parse(term)), False
        except ValueError:
            return queryset.filter(task_name__icontains=term), False

    @admin.display(description="state", ordering="state")
    def coloured_state(self, job: Job) -> SafeString:
        return _coloured(STATE_COLOURS.get(job.state, "#000000"), job.state)

    @admin.display(description="runtime")
    def runtime(self, job: Job) -> str:
        if job.started_at is None or job.finished_at is None:
            return "-"
        return f"{(job.finished_at - job.started_at).total_seconds():.3f} s"

    @admin.display(description="args")
    def arguments(self, job: Job) -> SafeString:
        return _pretty(job.args)

    @admin.display(description="kwargs")
    def keyword_arguments(self, job: Job) -> SafeString:
        return _pretty(job.kwargs)

    @admin.display(description="result")
    def outcome(self, job: Job) -> SafeString:
        return _pretty(job.result) if job.state == states.SUCCESS else format_html("{}", "-")

    @admin.display(description="error message")
    def error_text(self, job: Job) -> SafeString:
        return format_html(
            '<div style="white-space: pre-wrap">{}</div>',
            text.shortened(job.error_message, SHOWN_CHARACTERS) or "-",
        )

    @admin.display(description="attempts")
    def attempts(self, job: Job) -> SafeString:
        """The latest attempts: the earlier ones from the history, then the current one."""
        rows = [
            (
                entry.get("attempt", "?"),
                entry.get("outcome", ""),
                entry.get("worker", ""),
                entry.get("started_at") or "",
                entry.get("ended_at") or "",
                _error(entry.get("error_type"), entry.get("error_message")),
            )
            for entry in job.history or []
        ]
        if job.attempt:
            rows.append(
                (
                    job.attempt,
                    job.state,
                    job.worker,
                    job.started_at or "",
                    job.finished_at or "",
                    _error(job.error_type, job.error_message)
                    if job.state != states.SUCCESS
                    else "",
                )
            )
        if not rows:
            return format_html("{}", "not run yet")
        hidden, rows = max(0, len(rows) - SHOWN_ATTEMPTS), rows[-SHOWN_ATTEMPTS:]
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            "{}<table><thead><tr><th>attempt</th><th>outcome</th><th>worker</th><th>started</th>"
            "<th>ended</th><th>error</th></tr></thead><tbody>{}</tbody></table>",
            f"{hidden} earlier attempt(s) not shown." if hidden else "",
            body,
        )

    @admin.display(description="traceback")
    def formatted_traceback(self, job: Job) -> SafeString:
        if not job.traceback:
            return format_html("{}", "-")
        # Its start and its end, where the exception is named.
        return format_html("<pre>{}</pre>", text.storable(job.traceback, SHOWN_CHARACTERS))

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
        return [overview, data, *super().get_urls()]

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
        }
        return TemplateResponse(request, "djqueue/admin/overview.html", context)

    def overview_data(self, request: HttpRequest) -> HttpResponse:
        """The overview's figures as JSON, for its script to update the page in place."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not view jobs."}, status=403)
        return self.needing_tables(
            request, lambda: JsonResponse(overview.build(request, _range(request)))
        )


def _range(request: HttpRequest) -> str:
    """The range asked for in ``?range=`` (hour, day, week); an unknown one is the hour."""
    asked = request.GET.get("range", overview.DEFAULT_RANGE)
    return asked if asked in overview.RANGES else overview.DEFAULT_RANGE


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
            return _coloured("#777777", "stopped")
        silent = timezone.now() - worker.last_heartbeat
        limit = datetime.timedelta(seconds=3 * conf.number("HEARTBEAT_SECONDS"))
        if silent > limit:
            return _coloured(STATE_COLOURS[states.FAILURE], "lost")
        return _coloured(STATE_COLOURS[states.SUCCESS], "alive")

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
        _log_entries(
            request, Queue.objects.filter(pk__in=names), CHANGE, "Paused" if paused else "Resumed"
        )
        verb = "Paused" if paused else "Resumed"
        self.message_user(request, f"{verb} {len(names)} queue(s): {', '.join(names)}.")


def _log_entries(request: HttpRequest, rows: QuerySet[Any], flag: int, message: str) -> None:
    """Admin log entries (one per row, in bulk) for an action ``request.user`` took."""
    user_id = request.user.pk
    assert user_id is not None  # admin actions run for logged-in staff only
    LogEntry.objects.log_actions(user_id, rows, flag, change_message=message)


def _coloured(colour: str, text: str) -> SafeString:
    return format_html('<strong style="color: {}">{}</strong>', colour, text)


def _pretty(value: object) -> SafeString:
    """``value`` as JSON, cut to SHOWN_CHARACTERS; when part of it could not be decoded,
    all of it as stored, under a note."""
    try:
        undecoded = codec.has_undecoded(value)
        shown = _json(value, as_stored=undecoded)
    except RecursionError:  # decoded, but nested deeper than Python can walk here
        return format_html('<p class="errornote">{}</p>', "Nested too deeply to be shown here.")
    pre = format_html("<pre>{}</pre>", text.shortened(shown, SHOWN_CHARACTERS))
    if not undecoded:
        return pre
    return format_html('<p class="errornote">{}</p>{}', UNDECODED_NOTE, pre)


def _json(value: object, as_stored: bool) -> str:
    """Indented JSON of ``value``; one line when it will be cut anyway (indenting is
    slow). ``as_stored`` writes decoded dates, decimals and UUIDs in their tagged form."""
    if isinstance(value, codec.Undecodable):
        return str(value)
    options: dict[str, Any] = {"ensure_ascii": False, "sort_keys": True}
    if as_stored:
        options["cls"] = codec.Encoder
    else:
        options["default"] = str
    compact = json.dumps(value, **options)
    return compact if len(compact) > SHOWN_CHARACTERS else json.dumps(value, indent=2, **options)


def _error(error_type: str | None, message: str | None) -> str:
    """An attempt's error for the attempts table, cut to SHOWN_IN_A_CELL."""
    return text.shortened(" ".join(filter(None, [error_type, message])), SHOWN_IN_A_CELL)


from djqueue.ops import periodic_admin  # noqa: E402, F401  (registers the periodic task pages)
