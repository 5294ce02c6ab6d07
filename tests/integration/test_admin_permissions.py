"""Who may see and change what in the admin: every page and action, GET and POST, CSRF.

Users: anonymous, a non-staff user, staff without permissions, staff with view
permissions only, and staff with every djqueue permission. Only the right permission
changes anything; every action is a POST that needs the CSRF token and leaves an admin
log entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from djqueue.core import states
from djqueue.db.models import Job, Queue
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

VIEW = ["view_job", "view_worker", "view_queue"]
EVERYTHING = [
    *VIEW,
    "revoke_job",
    "terminate_job",
    "retry_job",
    "delete_job",
    "change_queue",
    "add_queue",
    "pause_queue",
]
USERS = ["anonymous", "not_staff", "staff", "viewer", "operator"]


def _client(kind: str, django_user_model: Any, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if kind == "anonymous":
        return client
    user = django_user_model.objects.create_user(kind, password="pw", is_staff=kind != "not_staff")
    granted = {"viewer": VIEW, "operator": EVERYTHING}.get(kind, [])
    user.user_permissions.set(Permission.objects.filter(codename__in=granted))
    client.force_login(user)
    return client


PAGES = [
    "admin:djqueue_job_changelist",
    "admin:djqueue_worker_changelist",
    "admin:djqueue_queue_changelist",
    "admin:djqueue_dashboard",
    "admin:djqueue_overview_data",
]


@pytest.mark.parametrize("kind", USERS)
@pytest.mark.parametrize("page", PAGES)
def test_pages_are_for_viewers_only(kind: str, page: str, django_user_model: Any) -> None:
    response = _client(kind, django_user_model).get(reverse(page))
    if kind in ("anonymous", "not_staff"):
        assert response.status_code == 302
        assert "/login/" in response["Location"]
    elif kind == "staff":
        assert response.status_code == 403
    else:
        assert response.status_code == 200


def _post_action(client: Client, action: str, ids: list[Any], url: str) -> Any:
    return client.post(
        url,
        {
            "action": action,
            "_selected_action": [str(i) for i in ids],
            "index": 0,
            "confirmed": "yes",  # past the confirmation page
        },
    )


ACTIONS = [
    # action, the state of the jobs it applies to, their state after (None: deleted)
    ("revoke_jobs", states.PENDING, states.REVOKED),
    ("retry_failed_jobs", states.FAILURE, states.PENDING),
    ("delete_finished_jobs", states.SUCCESS, None),
]


@pytest.mark.parametrize("kind", USERS)
@pytest.mark.parametrize(("action", "before", "after"), ACTIONS)
def test_job_actions_need_their_permission(
    kind: str, action: str, before: str, after: str | None, django_user_model: Any
) -> None:
    jobs = JobFactory.create_batch(3, state=before)
    client = _client(kind, django_user_model)
    _post_action(client, action, [j.id for j in jobs], reverse("admin:djqueue_job_changelist"))
    remaining = Job.objects.filter(pk__in=[j.id for j in jobs])
    if kind == "operator":
        if after is None:
            assert not remaining.exists()
        else:
            assert set(remaining.values_list("state", flat=True)) == {after}
        assert LogEntry.objects.count() == 3
    else:
        assert set(remaining.values_list("state", flat=True)) == {before}
        assert LogEntry.objects.count() == 0


@pytest.mark.parametrize("action", [name for name, _, _ in ACTIONS])
def test_actions_are_csrf_protected(action: str, django_user_model: Any) -> None:
    jobs = JobFactory.create_batch(2, state=states.FAILURE)
    client = _client("operator", django_user_model, csrf=True)
    response = _post_action(
        client, action, [j.id for j in jobs], reverse("admin:djqueue_job_changelist")
    )
    assert response.status_code == 403
    assert set(Job.objects.values_list("state", flat=True)) == {states.FAILURE}


def test_actions_do_nothing_on_get(django_user_model: Any) -> None:
    job = JobFactory(state=states.FAILURE)
    client = _client("operator", django_user_model)
    url = reverse("admin:djqueue_job_changelist")
    client.get(url, {"action": "retry_failed_jobs", "_selected_action": [str(job.id)]})
    assert Job.objects.get(pk=job.id).state == states.FAILURE


def test_actions_only_touch_jobs_they_apply_to(django_user_model: Any) -> None:
    running = JobFactory(state=states.STARTED, worker="w", attempt=1)
    waiting = JobFactory(state=states.PENDING)
    client = _client("operator", django_user_model)
    url = reverse("admin:djqueue_job_changelist")
    _post_action(client, "delete_finished_jobs", [running.id, waiting.id], url)
    _post_action(client, "retry_failed_jobs", [running.id, waiting.id], url)
    assert Job.objects.get(pk=running.id).state == states.STARTED
    assert Job.objects.get(pk=waiting.id).state == states.PENDING


def test_bulk_retry_of_thousands_of_jobs(django_user_model: Any) -> None:
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    JobFactory.create_batch(2500, state=states.FAILURE, error_type="ValueError")
    client = _client("operator", django_user_model)
    response = client.post(
        reverse("admin:djqueue_job_changelist") + "?state__exact=FAILURE",
        {
            "action": "retry_failed_jobs",
            "select_across": "1",
            "index": 0,
            "confirmed": "yes",
            ACTION_CHECKBOX_NAME: [str(Job.objects.first().pk)],
        },  # type: ignore[union-attr]
    )
    # More than a chunk: the progress page's script goes through them, chunk by chunk.
    assert response.status_code == 200 and 'data-total="2500"' in response.content.decode()
    cursor, finished = "", False
    while not finished:
        step = client.post(
            reverse("admin:djqueue_job_batch_step"),
            {"action": "retry_failed_jobs", "query": "state__exact=FAILURE", "cursor": cursor},
        ).json()
        cursor, finished = step["cursor"] or cursor, step["finished"]
    assert Job.objects.filter(state=states.PENDING).count() == 2500
    assert Job.objects.filter(state=states.PENDING, error_type="").count() == 2500


@pytest.mark.parametrize("kind", USERS)
def test_pausing_a_queue_needs_the_pause_permission(kind: str, django_user_model: Any) -> None:
    Queue.objects.create(name="mail", paused=False)
    client = _client(kind, django_user_model)
    _post_action(client, "pause", ["mail"], reverse("admin:djqueue_queue_changelist"))
    paused = Queue.objects.get(name="mail").paused
    assert paused is (kind == "operator")


def test_jobs_cannot_be_edited_even_by_an_operator(django_user_model: Any) -> None:
    job = JobFactory()
    client = _client("operator", django_user_model)
    client.post(reverse("admin:djqueue_job_change", args=[job.id]), {"state": "SUCCESS"})
    assert Job.objects.get(pk=job.id).state == states.PENDING
    response = client.post(reverse("admin:djqueue_job_delete", args=[job.id]), {"post": "yes"})
    assert response.status_code == 403
