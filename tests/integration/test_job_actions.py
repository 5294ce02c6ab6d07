"""Batch actions of the job list (djqueue.ops.job_actions): a confirmation with the
count, on a selection or on everything the filter matches, chunk by chunk through the
step view for large batches, each with its permission, and a log entry per job."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from djqueue.core import states
from djqueue.db.models import Job
from djqueue.ops import job_actions
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
LIST = "/admin/djqueue/job/"
STEP = "/admin/djqueue/job/batch/step/"


def _client(django_user_model: Any, *codenames: str) -> Client:
    user = django_user_model.objects.create_user("u", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_job", *codenames]))
    client = Client()
    client.force_login(user)
    return client


def _ask(
    client: Client, action: str, query: str = "", confirmed: bool = False, **extra: Any
) -> Any:
    data = {"action": action, "index": 0, **extra}
    if confirmed:
        data["confirmed"] = "yes"
    return client.post(f"{LIST}?{query}", data)


def _states(jobs: list[Job]) -> set[str]:
    return set(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("state", flat=True))


def _way_back(page: str) -> bool:
    """Whether a batch page's breadcrumbs lead back to the job list, through the action."""
    crumbs = page.split('<div class="breadcrumbs">', 1)[-1].split("</div>", 1)[0]
    return "Jobs</a>" in crumbs and "Retry selected failed jobs" in crumbs


def test_an_action_asks_first_with_the_count_and_changes_nothing_until_confirmed(
    django_user_model: Any,
) -> None:
    failed = JobFactory.create_batch(3, state=states.FAILURE)
    client = _client(django_user_model, "retry_job")
    ids = [str(j.id) for j in failed[:2]]
    asked = _ask(client, "retry_failed_jobs", **{ACTION_CHECKBOX_NAME: ids})
    page = asked.content.decode()
    assert asked.status_code == 200
    assert '<strong id="djq-batch-count">2</strong> jobs' in page and "selected" in page
    assert "Failed jobs are queued again" in page
    assert _way_back(page)
    assert _states(failed) == {states.FAILURE}
    done = _ask(client, "retry_failed_jobs", confirmed=True, **{ACTION_CHECKBOX_NAME: ids})
    assert done.status_code == 302
    assert Job.objects.filter(state=states.PENDING).count() == 2
    assert LogEntry.objects.count() == 2
    messages = client.get(done["Location"]).content.decode()
    assert "Queued again 2 of 2 job(s)." in messages


def test_everything_matching_the_filter_is_counted_and_changed_at_once_when_few(
    django_user_model: Any,
) -> None:
    failed = JobFactory.create_batch(4, state=states.FAILURE, queue="mail")
    other = JobFactory(state=states.FAILURE, queue="default")
    client = _client(django_user_model, "retry_job")
    query = "state__exact=FAILURE&queue__exact=mail"
    across = {"select_across": "1", ACTION_CHECKBOX_NAME: [str(failed[0].id)]}
    page = _ask(client, "retry_failed_jobs", query, **across).content.decode()
    assert '<strong id="djq-batch-count">4</strong> jobs' in page
    assert "matching the filter" in page
    _ask(client, "retry_failed_jobs", query, confirmed=True, **across)
    assert _states(failed) == {states.PENDING}
    assert _states([other]) == {states.FAILURE}


def test_a_large_batch_goes_chunk_by_chunk_through_the_step_view(
    django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_actions, "CHUNK", 4)
    failed = JobFactory.create_batch(10, state=states.FAILURE, error_message="boom")
    JobFactory.create_batch(2, state=states.FAILURE, error_message="other")
    client = _client(django_user_model, "retry_job")
    query = "state__exact=FAILURE&q=boom"
    across = {"select_across": "1", ACTION_CHECKBOX_NAME: [str(failed[0].id)]}
    progress = _ask(client, "retry_failed_jobs", query, confirmed=True, **across)
    page = progress.content.decode()
    assert progress.status_code == 200 and 'id="djq-batch"' in page
    assert 'data-total="10"' in page and "djqueue/job_batch.js" in page
    assert _way_back(page)
    assert _states(failed) == {states.FAILURE}  # the page's script does the work
    cursor, reads = "", []
    while True:
        step = client.post(
            STEP, {"action": "retry_failed_jobs", "query": query, "cursor": cursor}
        ).json()
        reads.append((step["read"], step["changed"]))
        cursor = step["cursor"] or cursor
        if step["finished"]:
            break
    assert reads == [(4, 4), (4, 4), (2, 2)]
    assert _states(failed) == {states.PENDING}
    assert Job.objects.filter(state=states.FAILURE).count() == 2
    assert LogEntry.objects.filter(change_message="Queued again as a new attempt").count() == 10


def test_delete_logs_each_deleted_job_and_leaves_unfinished_ones(django_user_model: Any) -> None:
    finished = JobFactory.create_batch(3, state=states.SUCCESS)
    waiting = JobFactory(state=states.PENDING)
    client = _client(django_user_model, "delete_job")
    ids = [str(j.id) for j in [*finished, waiting]]
    _ask(client, "delete_finished_jobs", confirmed=True, **{ACTION_CHECKBOX_NAME: ids})
    assert list(Job.objects.values_list("pk", flat=True)) == [waiting.pk]
    entries = LogEntry.objects.all()
    assert entries.count() == 3 and {e.action_flag for e in entries} == {DELETION}
    assert {e.object_id for e in entries} == {str(j.id) for j in finished}


def test_revoke_and_terminate_by_filter(django_user_model: Any) -> None:
    waiting = JobFactory.create_batch(2, queue="mail")
    running = JobFactory(queue="mail", state=states.STARTED, attempt=1, worker="w")
    client = _client(django_user_model, "revoke_job", "terminate_job")
    across = {"select_across": "1", ACTION_CHECKBOX_NAME: [str(running.id)]}
    _ask(client, "revoke_jobs", "queue__exact=mail", confirmed=True, **across)
    assert _states(waiting) == {states.REVOKED}
    assert Job.objects.get(pk=running.pk).revoke_requested_at is None
    _ask(client, "terminate_jobs", "queue__exact=mail", confirmed=True, **across)
    assert Job.objects.get(pk=running.pk).revoke_requested_at is not None


@pytest.mark.parametrize(
    ("action", "permission"),
    [
        ("revoke_jobs", "revoke_job"),
        ("terminate_jobs", "terminate_job"),
        ("retry_failed_jobs", "retry_job"),
        ("delete_finished_jobs", "delete_job"),
    ],
)
def test_each_action_and_its_steps_need_its_own_permission(
    action: str, permission: str, django_user_model: Any
) -> None:
    jobs = [JobFactory(state=state) for state in (states.PENDING, states.FAILURE, states.SUCCESS)]
    others = [
        p for p in ("revoke_job", "terminate_job", "retry_job", "delete_job") if p != permission
    ]
    client = _client(django_user_model, *others)
    across = {"select_across": "1", ACTION_CHECKBOX_NAME: [str(jobs[0].id)]}
    _ask(client, action, confirmed=True, **across)
    step = client.post(STEP, {"action": action, "query": "", "cursor": ""})
    assert step.status_code == 403
    assert [Job.objects.get(pk=j.pk).state for j in jobs] == [j.state for j in jobs]
    assert LogEntry.objects.count() == 0


def test_the_step_view_refuses_what_it_cannot_do(django_user_model: Any, client: Client) -> None:
    anonymous = client.post(STEP, {"action": "retry_failed_jobs"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    allowed = _client(django_user_model, "retry_job")
    assert allowed.get(STEP).status_code == 405
    assert allowed.post(STEP, {"action": "drop_everything"}).status_code == 400
    bad_cursor = {"action": "retry_failed_jobs", "query": "", "cursor": "nope"}
    assert allowed.post(STEP, bad_cursor).status_code == 400
    blind = django_user_model.objects.create_user("blind", password="pw", is_staff=True)
    blind.user_permissions.set(Permission.objects.filter(codename="retry_job"))
    no_list = Client()
    no_list.force_login(blind)
    assert no_list.post(STEP, {"action": "retry_failed_jobs"}).status_code == 403
    forced = Client(enforce_csrf_checks=True)
    forced.force_login(django_user_model.objects.get(username="u"))
    assert forced.post(STEP, {"action": "retry_failed_jobs"}).status_code == 403
