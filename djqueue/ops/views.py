"""Views a project can mount (``djqueue.urls``): job status as JSON, and metrics.

Access control is the project's: wrap the views or include the URLs behind its own
authentication (see the monitoring docs).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from djqueue.core import conf, states
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import schema
from djqueue.db.models import Job

FIELDS = (
    "state",
    "task_name",
    "result",
    "error_type",
    "error_message",
    "retries",
    "attempt",
    "progress",
)


@require_GET
def job_status(request: HttpRequest, job_id: uuid.UUID) -> JsonResponse:
    """A job's state (and result or error once finished), for front ends that poll."""
    try:
        with schema.translated():
            jobs = Job.objects.using(conf.database())
            row = jobs.filter(pk=job_id).values(*FIELDS).first()
    except MigrationsMissing as exc:
        schema.roll_back_after_error()
        # What a front end can show; the page works again once migrate has run.
        return JsonResponse({"id": str(job_id), "error": str(exc)}, status=503)
    if row is None:
        return JsonResponse({"id": str(job_id), "error": "no such job"}, status=404)
    body: dict[str, Any] = {
        "id": str(job_id),
        "task": row["task_name"],
        "state": row["state"],
        "ready": row["state"] in states.READY,
        "retries": row["retries"],
        "attempt": row["attempt"],
        "progress": row["progress"],
    }
    if row["state"] == states.SUCCESS:
        body["result"] = row["result"]
    elif row["error_type"]:
        body["error"] = {"type": row["error_type"], "message": row["error_message"]}
    return JsonResponse(body)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (needs the ``prometheus`` extra)."""
    # Imported here: it needs prometheus_client, an optional dependency.
    from djqueue.ops import metrics as exporter

    return HttpResponse(
        exporter.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
