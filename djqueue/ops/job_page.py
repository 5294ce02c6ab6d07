"""The job page of the admin: buttons for what can be done to the job now, why it is
waiting, its workflow, its attempts and its traceback (docs/monitoring.md#the-job-page).

:class:`JobPage` is mixed into the job's ModelAdmin. Each button is a POST to a view of
its own, protected by Django's CSRF token, checks its permission again whatever the
page showed, calls the broker (or sends the task again), and leaves a LogEntry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from djqueue.core import codec, conf, ids, registry, states, text
from djqueue.db import broker
from djqueue.db.models import Job
from djqueue.ops import (
    access,
    admin_tables,
    job_values,
    timeline,
    tracebacks,
    waiting,
    workflow_graph,
)


@dataclass(frozen=True)
class Button:
    """A button of the job page: what it does, where it posts, and a confirmation."""

    name: str  # retry, revoke, terminate, run-again
    label: str
    url: str
    confirm: str


# name -> (label, permission, the states the job must be in, the confirmation asked
# first). Run again sends a new job, so it takes the permission to queue jobs again.
BUTTONS: dict[str, tuple[str, str, frozenset[str], str]] = {
    "retry": (
        "Retry",
        access.RETRY,
        frozenset({states.FAILURE}),
        "Queue this failed job again (same id and arguments, a new attempt)?",
    ),
    "revoke": (
        "Revoke",
        access.REVOKE,
        frozenset(states.WAITING),
        "Revoke this job? It ends REVOKED and never runs.",
    ),
    "terminate": (
        "Terminate",
        access.TERMINATE,
        frozenset(states.HELD),
        "Stop this job? Its worker stops it and it ends REVOKED.",
    ),
    "run-again": (
        "Run again",
        access.RETRY,
        states.READY,
        "Send a new job of this task with the same arguments?",
    ),
}


def buttons(request: HttpRequest, job: Job) -> list[Button]:
    """The buttons ``request.user`` may press on ``job``'s page now."""
    shown = []
    for name, (label, permission, allowed, confirm) in BUTTONS.items():
        if job.state not in allowed or not access.may(request.user, permission):
            continue
        if name == "run-again" and runs_again_refused(job) is not None:
            continue
        url = reverse(f"admin:djqueue_job_{name.replace('-', '_')}", args=[job.pk])
        shown.append(Button(name, label, url, confirm))
    return shown


def runs_again_refused(job: Job) -> str | None:
    """Why ``job`` cannot be sent again from here, or None when it can."""
    if registry.find(job.task_name) is None:
        return f"The task {job.task_name!r} is not registered in this web process."
    if codec.has_undecoded(job.args) or codec.has_undecoded(job.kwargs):
        return "Part of its arguments cannot be decoded."
    if not isinstance(job.args, list) or not isinstance(job.kwargs, dict):
        return "Its arguments are not a list and a dict."
    return None


RETRY_REFUSED = (
    "only a failed job is retried, and a unique one only while no other job waits with its key"
)


class JobPage(admin_tables.NeedsTables):
    """The job page's buttons and "why it is waiting", for the job ModelAdmin."""

    @admin.display(description="attempts")
    def attempts(self, job: Job) -> SafeString:
        """Each attempt: when claimed and started, by which worker on which host, how
        it ended, its runtime and error."""
        return render_to_string("djqueue/admin/job_timeline.html", {"timeline": timeline.of(job)})

    @admin.display(description="traceback")
    def formatted_traceback(self, job: Job) -> SafeString:
        """The traceback: the exception, the user's frames, then the whole of it with
        runs of library frames folded."""
        if not job.traceback:
            return format_html("{}", "-")
        # Its start and its end (where the exception is named), as stored.
        shown = text.storable(job.traceback, job_values.SHOWN_CHARACTERS)
        parsed = tracebacks.parse(shown)
        return render_to_string("djqueue/admin/job_traceback.html", {"traceback": parsed})

    def get_urls(self) -> list[URLPattern]:
        views: dict[str, Callable[[HttpRequest, Job], HttpResponse]] = {
            "retry": self._retry,
            "revoke": self._revoke,
            "terminate": self._terminate,
            "run-again": self._run_again,
        }
        mine = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(self._button(name, view)),
                name=f"djqueue_job_{name.replace('-', '_')}",
            )
            for name, view in views.items()
        ]
        return [*mine, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The job is read before the admin's own view runs: without djqueue's tables,
        # the page that says to migrate answers instead of a ProgrammingError.
        return self.needing_tables(
            request, self._change_view, request, object_id, form_url, extra_context
        )

    def _change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str,
        extra_context: dict[str, Any] | None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        job = self._job(object_id)
        if job is not None and self.has_view_permission(request, job):
            visible = access.Visible.to(request.user)
            reasons = waiting.of(job.pk, visible)
            context["djq_reasons"] = reasons
            # A retry would leave it failed while another job waits with its key.
            held = any(reason.kind == "unique-key" for reason in reasons)
            context["djq_buttons"] = [
                button for button in buttons(request, job) if not (held and button.name == "retry")
            ]
            context["djq_why_title"] = waiting.title(job.state)
            context["djq_graph"] = workflow_graph.around(job.pk)
        return super().change_view(request, object_id, form_url, context)

    def _job(self, object_id: str) -> Job | None:
        try:
            job_id = ids.parse(object_id)
        except ValueError:
            return None
        return Job.objects.using(conf.database()).filter(pk=job_id).first()

    def _button(
        self, name: str, view: Callable[[HttpRequest, Job], HttpResponse]
    ) -> Callable[..., HttpResponse]:
        _, permission, _, _ = BUTTONS[name]

        @require_POST
        def pressed(request: HttpRequest, object_id: str) -> HttpResponse:
            if not access.may(request.user, permission):
                raise PermissionDenied(f"This needs the permission djqueue.{permission}.")
            return self.needing_tables(request, self._press, request, object_id, view)

        return pressed

    def _press(
        self,
        request: HttpRequest,
        object_id: str,
        view: Callable[[HttpRequest, Job], HttpResponse],
    ) -> HttpResponse:
        job = self._job(object_id)
        if job is None:
            raise Http404("No such job.")
        return view(request, job)

    def _back(self, job_id: Any) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:djqueue_job_change", args=[job_id]))

    def _not_now(self, request: HttpRequest, job: Job, what: str) -> HttpResponse:
        self.message_user(
            request, f"Nothing done: {what} (the job is {job.state} now).", messages.WARNING
        )
        return self._back(job.pk)

    def _retry(self, request: HttpRequest, job: Job) -> HttpResponse:
        if job.state != states.FAILURE or not broker.retry_failed([job.pk]):
            return self._not_now(request, job, RETRY_REFUSED)
        _log(request, job, CHANGE, "Queued again as a new attempt (job page)")
        self.message_user(request, "Queued the job again as a new attempt.")
        return self._back(job.pk)

    def _revoke(self, request: HttpRequest, job: Job) -> HttpResponse:
        if not broker.revoke(job.pk):
            return self._not_now(request, job, "only a job that has not started is revoked")
        _log(request, job, CHANGE, "Revoked (job page)")
        self.message_user(request, "Revoked the job: it will not run.")
        return self._back(job.pk)

    def _terminate(self, request: HttpRequest, job: Job) -> HttpResponse:
        if not broker.revoke(job.pk, terminate=True):
            return self._not_now(request, job, "the job has ended")
        _log(request, job, CHANGE, "Revoked; asked its worker to stop it (job page)")
        self.message_user(request, "Asked the job's worker to stop it; it ends REVOKED.")
        return self._back(job.pk)

    def _run_again(self, request: HttpRequest, job: Job) -> HttpResponse:
        refused = runs_again_refused(job)
        if refused is not None:
            return self._not_now(request, job, refused)
        task = registry.get(job.task_name)
        sent = task.apply_async(job.args, job.kwargs, queue=job.queue, priority=job.priority)
        new = Job.objects.using(conf.database()).filter(pk=ids.parse(str(sent.id))).first()
        _log(request, job, CHANGE, f"Sent again as job {sent.id} (job page)")
        if new is not None:
            _log(request, new, ADDITION, f"Sent again from job {job.pk} (job page)")
        self.message_user(request, f"Sent a new job with the same arguments: {sent.id}.")
        return self._back(sent.id)


def _log(request: HttpRequest, job: Job, flag: int, message: str) -> None:
    user_id = request.user.pk
    assert user_id is not None  # the admin's views run for logged-in staff only
    LogEntry.objects.log_actions(user_id, [job], flag, change_message=message)
