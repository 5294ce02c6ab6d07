"""The fleet's admin pages: workers (read only) and queues (paused and resumed through
the broker, which tells the workers)."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from djqueue.client import control
from djqueue.core import conf, limits, states
from djqueue.db import broker
from djqueue.db.models import Job, Queue, Worker
from djqueue.ops import access, admin_tables, durations, links, queue_page, worker_control
from djqueue.ops.admin_base import STATE_COLOURS, ReadOnlyAdmin, coloured, log_entries


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
        "started_at",
        "last_heartbeat",
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
            {
                "fields": [
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
                ]
            },
        ),
        ("Running now", {"fields": ["held_jobs"]}),
        ("Child processes", {"fields": ["child_table"]}),
    ]
    readonly_fields = [
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
        "held_jobs",
        "child_table",
    ]

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
        return _moment(worker.started_at)

    @admin.display(description="uptime")
    def uptime(self, worker: Worker) -> str:
        end = worker.stopped_at or timezone.now()
        return durations.words(end - worker.started_at) + (
            " (stopped)" if worker.stopped_at else ""
        )

    @admin.display(description="last heartbeat")
    def heartbeat(self, worker: Worker) -> str:
        ago = timezone.now() - worker.last_heartbeat
        return f"{_moment(worker.last_heartbeat)} ({durations.words(ago)} ago)"

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
    limit = datetime.timedelta(seconds=3 * conf.number("HEARTBEAT_SECONDS"))
    return worker.stopped_at is None and timezone.now() - worker.last_heartbeat <= limit


def _since(now: datetime.datetime, moment: datetime.datetime | None) -> str:
    return "-" if moment is None else durations.words(now - moment)


def _moment(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


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


class QueueForm(forms.ModelForm):  # type: ignore[type-arg]
    """A queue row: paused, and its limits over all workers (a rate as ``"100/m"``)."""

    rate = forms.CharField(
        required=False,
        label="Rate limit",
        help_text="Jobs of the queue started per second, minute or hour over all workers, "
        'such as "10/s" or "100/m"; empty: none.',
    )

    class Meta:
        model = Queue
        fields = ("name", "paused", "concurrency_limit")
        labels = {"concurrency_limit": "Concurrency limit"}
        help_texts = {
            "concurrency_limit": "Jobs of the queue held by workers at once, over all "
            "workers together; empty: none."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "rate" in self.fields:
            self.fields["rate"].initial = queue_page.rate_text(self.instance)

    def clean_concurrency_limit(self) -> int | None:
        value: int | None = self.cleaned_data.get("concurrency_limit")
        if value is not None and value < 1:
            raise forms.ValidationError("A concurrency limit is 1 or more (empty: none).")
        return value

    def clean_rate(self) -> tuple[int, float] | None:
        text = (self.cleaned_data.get("rate") or "").strip()
        if not text:
            return None
        try:
            rate = limits.parse_rate(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return (rate.count, rate.period)


@admin.register(Queue)
class QueueAdmin(admin_tables.NeedsTables):
    """Queues: their list is a live page of every queue (:mod:`djqueue.ops.queue_page`)
    with pause and resume buttons. Saving goes through the broker, which tells the
    workers.

    Pausing and resuming need ``pause_queue``, whichever way they are asked for: the
    buttons, the actions, the change form, or adding a queue row with *paused* ticked.
    """

    list_display = ("name", "paused", "changed_at")
    form = QueueForm
    fields = ("name", "paused", "concurrency_limit", "rate")
    actions = ["pause", "resume"]

    def get_urls(self) -> list[URLPattern]:
        command = path(
            "command/", self.admin_site.admin_view(self.command_view), name="djqueue_queue_command"
        )
        return [command, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # POSTs are the list's actions, which the admin's own list handles.
        if request.method == "POST":
            return super().changelist_view(request, extra_context)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return self.needing_tables(request, self._queues, request)

    def _queues(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Queues",
            "opts": self.model._meta,
            "may_pause": self.has_pause_permission(request),
            "may_limit": self.has_limit_permission(request),
            "may_add": self.has_add_permission(request),
            **queue_page.context(queue_page.rows()),
        }
        return TemplateResponse(request, "djqueue/admin/queues.html", context)

    def command_view(self, request: HttpRequest) -> HttpResponse:
        """Pause or resume one queue from the page's buttons (a POST)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_pause_permission(request):
            raise PermissionDenied("Pausing and resuming a queue needs djqueue.pause_queue.")
        name, command = request.POST.get("queue", ""), request.POST.get("command")
        most = Queue._meta.get_field("name").max_length or 0
        if command not in ("pause", "resume") or not 0 < len(name) <= most:
            self.message_user(request, "Choose a queue and pause or resume.", messages.ERROR)
        else:
            self._set(request, name, paused=command == "pause")
            self.message_user(
                request, f"{'Paused' if command == 'pause' else 'Resumed'} queue {name}."
            )
        return redirect("admin:djqueue_queue_changelist")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        name = ("name",) if obj is not None else ()
        paused = () if self.has_pause_permission(request) else ("paused",)
        limited = () if self.has_limit_permission(request) else ("concurrency_limit", "rate")
        return (*name, *paused, *limited)

    @admin.display(description="rate limit")
    def rate(self, obj: Queue) -> str:
        return queue_page.rate_text(obj) or "-"

    def has_limit_permission(self, request: HttpRequest) -> bool:
        return access.may(request.user, access.LIMIT_QUEUES)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # The queues page links a queue without a row to the add form, named.
        return {"name": request.GET.get("name", "")}

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
        if self.has_limit_permission(request) and "concurrency_limit" in form.cleaned_data:
            rate = form.cleaned_data.get("rate")
            broker.set_queue_limits(obj.name, form.cleaned_data["concurrency_limit"], rate)

    @admin.action(description="Pause selected queues", permissions=["pause"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._set_all(request, queryset, paused=True)

    @admin.action(description="Resume selected queues", permissions=["pause"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._set_all(request, queryset, paused=False)

    def _set_all(self, request: HttpRequest, queryset: QuerySet[Queue], paused: bool) -> None:
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            self._set(request, name, paused)
        verb = "Paused" if paused else "Resumed"
        self.message_user(request, f"{verb} {len(names)} queue(s): {', '.join(names)}.")

    def _set(self, request: HttpRequest, name: str, paused: bool) -> None:
        broker.set_paused(name, paused)
        log_entries(
            request, Queue.objects.filter(pk=name), CHANGE, "Paused" if paused else "Resumed"
        )
