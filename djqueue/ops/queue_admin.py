"""The queues' admin pages: every queue on one live page, paused and resumed and given
limits through the broker, which tells the workers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from djqueue.core import conf, limits
from djqueue.db import broker
from djqueue.db.models import Queue
from djqueue.ops import access, admin_tables, queue_page
from djqueue.ops.admin_base import log_entries


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
