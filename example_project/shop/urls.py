"""URLs of the shop."""

from django.urls import path

from example_project.shop import views

app_name = "shop"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("jobs/<uuid:job_id>/", views.job_status, name="job-status"),
]
