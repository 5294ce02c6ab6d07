"""Views a project can mount (``djqueue.urls``): job status as JSON, and metrics.

Both are closed by default (docs/monitoring.md#access): the job status answers the
holder of the job's signed token or a user with ``djqueue.view_job``; the metrics answer
a bearer token or a user with ``djqueue.view_metrics``. A setting opens either on purpose.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET

from djqueue.client import tokens
from djqueue.core import conf, states
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import schema
from djqueue.db.models import Job
from djqueue.ops import access

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
    if not _may_read_status(request, job_id):
        # Asked before the job is looked up: the answer says nothing about whether it exists.
        return JsonResponse({"id": str(job_id), "error": STATUS_DENIED}, status=403)
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


STATUS_DENIED = (
    "This job's status needs its token (?token=..., made by djqueue.status_token(result) "
    "where the job was sent) or a login with the permission djqueue.view_job."
)
METRICS_MISSING_CLIENT = (
    "djqueue's metrics need the prometheus_client library, which is not installed: "
    "pip install 'djqueue[prometheus]' (or prometheus_client), then restart the server."
)


def _may_read_status(request: HttpRequest, job_id: uuid.UUID) -> bool:
    if conf.flag("JOB_STATUS_PUBLIC"):
        return True
    token = request.GET.get("token")
    if token and tokens.check(job_id, token):
        return True
    return access.may(request.user, access.VIEW_JOBS)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (needs the ``prometheus`` extra)."""
    refused = _metrics_refused(request)
    if refused is not None:
        return refused
    try:
        # Imported here: it needs prometheus_client, an optional dependency.
        from djqueue.ops import metrics as exporter
    except ImportError as exc:
        if exc.name != "prometheus_client" and "prometheus_client" not in str(exc):
            raise
        return _plain(METRICS_MISSING_CLIENT, status=501)

    return HttpResponse(
        exporter.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )


def _metrics_refused(request: HttpRequest) -> HttpResponse | None:
    """None when the request may read the metrics, else the answer that says why not."""
    if conf.flag("METRICS_PUBLIC"):
        return None
    expected = conf.get("METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given:
        if expected and constant_time_compare(given.strip(), str(expected)):
            return None
        return _plain("Wrong bearer token for djqueue's metrics.", status=403)
    if access.may(request.user, access.VIEW_METRICS):
        return None
    if request.user.is_authenticated:
        return _plain("Reading the metrics needs the permission djqueue.view_metrics.", 403)
    refused = _plain(
        "djqueue's metrics need 'Authorization: Bearer <METRICS_TOKEN>' or a login with "
        "the permission djqueue.view_metrics.",
        status=401,
    )
    refused["WWW-Authenticate"] = 'Bearer realm="djqueue metrics"'
    return refused


def _plain(message: str, status: int) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
