"""Views of the shop: a sign-up form that enqueues a welcome email, and job status."""

from __future__ import annotations

import uuid

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

import djqueue
from djqueue.exceptions import JobNotFound
from example_project.shop import signup as signing_up


class SignupForm(forms.Form):
    """Name and email of a new customer."""

    name = forms.CharField(max_length=200)
    email = forms.EmailField()


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Show the form (GET) or sign the customer up and answer with the job id (POST)."""
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        customer, result = signing_up.register_customer(
            form.cleaned_data["name"], form.cleaned_data["email"]
        )
        return JsonResponse({"customer": customer.pk, "welcome_email_job": str(result.id)})
    status = 400 if request.method == "POST" else 200
    return render(request, "shop/signup.html", {"form": form}, status=status)


@require_GET
def job_status(request: HttpRequest, job_id: uuid.UUID) -> JsonResponse:
    """The state of a job, and its result once it succeeded."""
    result = djqueue.AsyncResult(job_id)
    try:
        state = result.state
    except JobNotFound:
        return JsonResponse({"id": str(job_id), "state": "UNKNOWN"}, status=404)
    body = {"id": str(job_id), "state": state}
    if state == "SUCCESS":
        body["result"] = result.result
    return JsonResponse(body)
