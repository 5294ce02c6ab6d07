"""Batch actions of the job list (docs/monitoring.md#batch-actions): revoke, terminate,
retry and delete, on the jobs selected or on every job the filter matches.

Each action asks first: a page with the count and what will happen. A batch of up to
CHUNK jobs is then done in the request that confirms it. A larger one is done by the
page's script, CHUNK jobs per request to a step view that reads the next jobs of the
filter, newest first, below a cursor: no request runs long, no statement holds more
than CHUNK rows, and the page shows how far it got. Every changed job gets an entry in
the admin's log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from djqueue.core import conf, ids, states
from djqueue.db import broker
from djqueue.db.models import Job

# Jobs changed per request and per statement.
CHUNK = 500


def _revoke(job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    return [job_id for job_id in job_ids if broker.revoke(job_id)]


def _terminate(job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    return [job_id for job_id in job_ids if broker.revoke(job_id, terminate=True)]


def _retry(job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    # A unique job whose key is taken stays failed. Those queued again are counted from
    # the statement: a worker may already have claimed, even finished, one of them.
    return broker.requeue_failed(job_ids)


def _delete(job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    broker.delete_finished(job_ids)
    left = set(_in_states(job_ids, states.ALL))
    return [job_id for job_id in job_ids if job_id not in left]


def _in_states(job_ids: Sequence[uuid.UUID], wanted: Sequence[str]) -> list[uuid.UUID]:
    rows = Job.objects.using(conf.database()).filter(pk__in=job_ids, state__in=wanted)
    return list(rows.values_list("pk", flat=True))


@dataclass(frozen=True)
class Batch:
    """One batch action: what it is called, who may, what it does to a chunk of jobs
    (returning the ids it changed) and how that is logged."""

    name: str
    description: str
    permission: str
    does: str
    # The states of the jobs it may change: the others are passed over.
    eligible: tuple[str, ...]
    apply: Callable[[Sequence[uuid.UUID]], list[uuid.UUID]]
    done: str
    log_message: str
    log_flag: int = CHANGE


BATCHES = {
    batch.name: batch
    for batch in [
        Batch(
            "revoke_jobs",
            "Revoke selected jobs (those not started)",
            "revoke",
            "Waiting jobs end REVOKED and never run; the others are left as they are.",
            states.WAITING,
            _revoke,
            "Revoked",
            "Revoked",
        ),
        Batch(
            "terminate_jobs",
            "Terminate selected jobs (stop running ones)",
            "terminate",
            "Waiting jobs end REVOKED; running ones are stopped by their worker.",
            (*states.WAITING, *states.HELD),
            _terminate,
            "Revoked or stopped",
            "Revoked; running ones asked to stop",
        ),
        Batch(
            "retry_failed_jobs",
            "Retry selected failed jobs",
            "retry",
            "Failed jobs are queued again (same id and arguments, a new attempt); the "
            "others are left as they are.",
            (states.FAILURE,),
            _retry,
            "Queued again",
            "Queued again as a new attempt",
        ),
        Batch(
            "delete_finished_jobs",
            "Delete selected finished jobs",
            "delete_finished",
            "Finished jobs (succeeded, failed, revoked, rejected, ignored) are deleted with "
            "their results; the others are left as they are.",
            tuple(sorted(states.READY)),
            _delete,
            "Deleted",
            "Deleted",
            DELETION,
        ),
    ]
}


def _action(batch: Batch) -> Callable[..., HttpResponse | None]:
    def action(model_admin: BatchActions, request: HttpRequest, queryset: QuerySet[Job]) -> Any:
        return model_admin.run_batch(request, queryset, batch)

    action.__name__ = batch.name
    return admin.action(description=batch.description, permissions=[batch.permission])(action)


class BatchActions(admin.ModelAdmin):  # type: ignore[type-arg]
    """The job list's batch actions, their confirmation page and their step view."""

    actions = [_action(batch) for batch in BATCHES.values()]

    def get_urls(self) -> list[URLPattern]:
        step = path(
            "batch/step/",
            self.admin_site.admin_view(self.batch_step),
            name="djqueue_job_batch_step",
        )
        return [step, *super().get_urls()]

    def run_batch(
        self, request: HttpRequest, queryset: QuerySet[Job], batch: Batch
    ) -> HttpResponse | None:
        """The action: ask first; once confirmed, do a small batch at once and hand a
        large one (every job the filter matches) to the progress page."""
        across = request.POST.get("select_across") == "1"
        count = queryset.order_by().count()
        if request.POST.get("confirmed") != "yes":
            return self._page(request, batch, "confirm", count=count, across=across)
        if across and count > CHUNK:
            return self._page(request, batch, "progress", count=count, across=True)
        # A page's selection, or a filter matching few jobs: done now.
        selected = list(queryset.order_by("-pk").values_list("pk", flat=True))
        changed = [job for chunk in _chunks(selected) for job in self._apply(request, batch, chunk)]
        self.message_user(request, f"{batch.done} {len(changed)} of {len(selected)} job(s).")
        return None

    def batch_step(self, request: HttpRequest) -> HttpResponse:
        """One chunk of a large batch: the next CHUNK jobs the list's filter matches,
        below ``cursor`` (newest first). Answers what was done and where to go on."""
        if request.method != "POST":
            return JsonResponse({"error": "POST only."}, status=405)
        batch = BATCHES.get(request.POST.get("action", ""))
        if batch is None:
            return JsonResponse({"error": "No such action."}, status=400)
        # The list's own permission too: a step reads the jobs the list would show.
        if not self.has_view_permission(request) or batch.name not in self.get_actions(request):
            return JsonResponse({"error": "You may not do this."}, status=403)
        try:
            queryset = self._filtered(request, request.POST.get("query", ""))
        except IncorrectLookupParameters:
            return JsonResponse({"error": "The list's filter is not valid."}, status=400)
        cursor = request.POST.get("cursor")
        if cursor:
            try:
                queryset = queryset.filter(pk__lt=ids.parse(cursor))
            except ValueError as exc:
                return JsonResponse({"error": str(exc)}, status=400)
        chunk = list(queryset.order_by("-pk").values_list("pk", flat=True)[:CHUNK])
        changed = self._apply(request, batch, chunk)
        return JsonResponse(
            {
                "read": len(chunk),
                "changed": len(changed),
                "cursor": str(chunk[-1]) if chunk else None,
                "finished": len(chunk) < CHUNK,
            }
        )

    def _filtered(self, request: HttpRequest, query: str) -> QuerySet[Job]:
        """The jobs the job list shows for the query string ``query`` (its filters and
        search), read as the list reads them."""
        listing = request.GET
        request.GET = QueryDict(query)
        try:
            changelist = self.get_changelist_instance(request)
            return changelist.get_queryset(request)
        finally:
            request.GET = listing

    def _apply(
        self, request: HttpRequest, batch: Batch, job_ids: Sequence[uuid.UUID]
    ) -> list[uuid.UUID]:
        """Do ``batch`` to those of ``job_ids`` it may change; log each job it changed."""
        # Read before: a deleted job has no name left to log under.
        candidates = _log_rows(job_ids, batch.eligible)
        changed = set(batch.apply([row.pk for row in candidates]))
        rows = [row for row in candidates if row.pk in changed]
        if rows:
            user_id = request.user.pk
            assert user_id is not None  # admin views run for logged-in staff only
            LogEntry.objects.log_actions(user_id, rows, batch.log_flag, batch.log_message)
        return [row.pk for row in rows]

    def _page(
        self, request: HttpRequest, batch: Batch, step: str, count: int, across: bool
    ) -> TemplateResponse:
        # The list's filters, search and order; not its page.
        query = request.GET.copy()
        query.pop("p", None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?" if step == "confirm" else batch.description,
            "opts": self.model._meta,
            "batch": batch,
            "count": count,
            "across": across,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "query": query.urlencode(),
            "list_url": f"{reverse('admin:djqueue_job_changelist')}?{query.urlencode()}",
            "step_url": reverse("admin:djqueue_job_batch_step"),
            "chunk": CHUNK,
        }
        return TemplateResponse(request, f"djqueue/admin/job_batch_{step}.html", context)


def _log_rows(job_ids: Sequence[uuid.UUID], wanted: Sequence[str]) -> list[Job]:
    """The jobs of ``job_ids`` in the states ``wanted``, as their log entries name them
    (id, task and state only: a row's arguments may hold megabytes)."""
    rows = Job.objects.using(conf.database()).filter(pk__in=job_ids, state__in=wanted)
    return list(rows.only("id", "task_name", "state"))


def _chunks(job_ids: Sequence[uuid.UUID]) -> list[Sequence[uuid.UUID]]:
    return [job_ids[n : n + CHUNK] for n in range(0, len(job_ids), CHUNK)]
