"""URLs a project can include: ``path("tasks/", include("djqueue.urls"))``."""

from __future__ import annotations

from django.urls import path

from djqueue.ops import views

app_name = "djqueue"

urlpatterns = [
    path("jobs/<uuid:job_id>/", views.job_status, name="job-status"),
    path("metrics/", views.metrics, name="metrics"),
]
