"""The job page: its buttons (each with its permission, a POST, a LogEntry) and its
"why it is waiting" section, through the admin against the real database."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from djqueue.core import states
from djqueue.core.records import Outcome
from djqueue.db import broker
from djqueue.db.models import Job
from tests.factories import JobFactory, StartedJobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

ADD = "tests.testapp.tasks.add"


def staff(client: Client, *codenames: str) -> User:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    for codename in ("view_job", *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return user


def page(client: Client, job: Job) -> str:
    response = client.get(reverse("admin:djqueue_job_change", args=[job.pk]))
    assert response.status_code == 200
    return response.content.decode()


def press(client: Client, job: Job, name: str) -> Any:
    return client.post(reverse(f"admin:djqueue_job_{name}", args=[job.pk]))


def offered(html: str) -> set[str]:
    return {
        name
        for name in ("retry", "revoke", "terminate", "run-again")
        if f'data-button="{name}"' in html
    }


@pytest.mark.parametrize(
    ("state", "factory", "expected"),
    [
        (states.PENDING, JobFactory, {"revoke"}),
        (states.RETRY, JobFactory, {"revoke"}),
        (states.STARTED, StartedJobFactory, {"terminate"}),
        (states.RECEIVED, StartedJobFactory, {"terminate"}),
        (states.FAILURE, JobFactory, {"retry", "run-again"}),
        (states.SUCCESS, JobFactory, {"run-again"}),
        (states.REVOKED, JobFactory, {"run-again"}),
    ],
)
def test_the_buttons_offered_are_what_can_be_done_now(
    admin_client: Client, state: str, factory: Any, expected: set[str]
) -> None:
    job = factory(task_name=ADD, state=state)
    assert offered(page(admin_client, job)) == expected


def test_without_a_permission_its_button_is_not_offered_and_its_post_refused(
    client: Client,
) -> None:
    staff(client)
    failed = JobFactory(task_name=ADD, state=states.FAILURE)
    waiting = JobFactory(task_name=ADD)
    running = StartedJobFactory(task_name=ADD)
    assert offered(page(client, failed)) == set()
    assert offered(page(client, waiting)) == set()
    for job, name in [
        (failed, "retry"),
        (failed, "run_again"),
        (waiting, "revoke"),
        (running, "terminate"),
    ]:
        assert press(client, job, name).status_code == 403
    assert Job.objects.get(pk=failed.pk).state == states.FAILURE
    assert Job.objects.get(pk=waiting.pk).state == states.PENDING
    assert Job.objects.get(pk=running.pk).revoke_requested_at is None
    assert Job.objects.count() == 3
    assert not LogEntry.objects.exists()


def test_each_button_needs_its_own_permission(client: Client) -> None:
    staff(client, "revoke_job")
    failed = JobFactory(task_name=ADD, state=states.FAILURE)
    waiting = JobFactory(task_name=ADD)
    assert offered(page(client, waiting)) == {"revoke"}
    assert offered(page(client, failed)) == set()
    assert press(client, failed, "retry").status_code == 403
    assert press(client, waiting, "revoke").status_code == 302
    assert Job.objects.get(pk=waiting.pk).state == states.REVOKED


def test_buttons_are_posts(admin_client: Client) -> None:
    job = JobFactory(task_name=ADD)
    assert admin_client.get(reverse("admin:djqueue_job_revoke", args=[job.pk])).status_code == 405
    assert Job.objects.get(pk=job.pk).state == states.PENDING


def test_buttons_check_csrf(django_user_model: Any) -> None:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    job = JobFactory(task_name=ADD)
    assert press(client, job, "revoke").status_code == 403
    assert Job.objects.get(pk=job.pk).state == states.PENDING


def test_retry_queues_a_failed_job_again_and_logs_it(admin_client: Client) -> None:
    job = JobFactory(task_name=ADD, state=states.FAILURE, attempt=1, error_type="ValueError")
    response = press(admin_client, job, "retry")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:djqueue_job_change", args=[job.pk])
    job.refresh_from_db()
    assert job.state == states.PENDING
    entry = LogEntry.objects.get(object_id=str(job.pk))
    assert entry.action_flag == CHANGE
    assert "Queued again" in entry.change_message


def test_revoke_and_terminate(admin_client: Client) -> None:
    waiting = JobFactory(task_name=ADD)
    running = StartedJobFactory(task_name=ADD)
    press(admin_client, waiting, "revoke")
    press(admin_client, running, "terminate")
    assert Job.objects.get(pk=waiting.pk).state == states.REVOKED
    assert Job.objects.get(pk=running.pk).revoke_requested_at is not None
    assert LogEntry.objects.filter(action_flag=CHANGE).count() == 2


def test_a_button_pressed_too_late_does_nothing_and_says_so(admin_client: Client) -> None:
    job = JobFactory(task_name=ADD)
    broker.revoke(job.pk)
    response = admin_client.post(reverse("admin:djqueue_job_revoke", args=[job.pk]), follow=True)
    assert "Nothing done" in response.content.decode()
    assert "REVOKED now" in response.content.decode()
    assert not LogEntry.objects.exists()


def test_run_again_sends_a_new_job_with_the_same_arguments(admin_client: Client) -> None:
    sent = tasks.add.apply_async((20, 22), queue="math", priority=3)
    broker.revoke(sent.id)
    old = Job.objects.get(pk=sent.id)
    response = press(admin_client, old, "run_again")
    new = Job.objects.exclude(pk=old.pk).get()
    assert response["Location"] == reverse("admin:djqueue_job_change", args=[new.pk])
    assert (new.task_name, new.args, new.kwargs, new.queue, new.priority) == (
        ADD,
        [20, 22],
        {},
        "math",
        3,
    )
    assert new.state == states.PENDING
    assert LogEntry.objects.get(object_id=str(new.pk)).action_flag == ADDITION
    assert "Sent again as job" in LogEntry.objects.get(object_id=str(old.pk)).change_message


def test_run_again_is_not_offered_for_a_task_this_process_does_not_know(
    admin_client: Client,
) -> None:
    job = JobFactory(task_name="elsewhere.tasks.unknown", state=states.SUCCESS)
    assert offered(page(admin_client, job)) == set()
    response = admin_client.post(reverse("admin:djqueue_job_run_again", args=[job.pk]), follow=True)
    assert "is not registered in this web process" in response.content.decode()
    assert Job.objects.count() == 1


def test_the_page_says_why_a_job_waits(admin_client: Client) -> None:
    broker.set_paused("mail", True)
    sent = tasks.add.apply_async((1, 2), queue="mail", countdown=600)
    html = page(admin_client, Job.objects.get(pk=sent.id))
    assert 'id="djq-why"' in html
    assert 'data-kind="not-due"' in html
    assert 'data-kind="paused"' in html
    assert 'data-kind="no-worker"' in html


def test_a_running_job_has_no_why_section(admin_client: Client) -> None:
    broker.register_worker("alive.1.abc", "host", 1, "threads", 4, ["default"])
    job = StartedJobFactory(task_name=ADD, worker="alive.1.abc")
    assert 'id="djq-why"' not in page(admin_client, job)


def test_a_running_job_whose_worker_died_says_so(admin_client: Client) -> None:
    job = StartedJobFactory(task_name=ADD, worker="gone.1.abc")
    html = page(admin_client, job)
    assert "Why it is not getting anywhere" in html
    assert 'data-kind="lost-worker"' in html


def test_reasons_escape_names_from_rows(admin_client: Client) -> None:
    sent = tasks.add.apply_async((1, 2), queue="<b>q</b>")
    html = page(admin_client, Job.objects.get(pk=sent.id))
    assert "<b>q</b>" not in html
    assert "&lt;b&gt;q&lt;/b&gt;" in html


TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/venv/lib/python3.12/site-packages/djqueue/core/executor.py", line 40, in run\n'
    "    return task(*args)\n"
    '  File "/srv/shop/tasks.py", line 12, in build_report\n'
    "    rows = fetch(user_id)\n"
    '  File "/venv/lib/python3.12/site-packages/client/api.py", line 7, in fetch\n'
    "    raise <ConnectionError>('down')\n"
    "ConnectionError: <down>"
)


def test_the_attempt_timeline_names_worker_host_times_outcome_and_runtime(
    admin_client: Client,
) -> None:
    broker.register_worker("djqueue@web-7.42.abc", "web-7", 42, "threads", 4, ["default"])
    sent = tasks.add.delay(1, 2)
    [first] = broker.claim(["default"], 1, "djqueue@web-7.42.abc", 30.0, limited=False)
    broker.mark_started(first.worker, [(first.id, first.attempt, 0.0)])
    broker.finish(
        [
            Outcome(
                first.id,
                first.attempt,
                first.task_name,
                states.RETRY,
                error_type="OSError",
                error_message="flaky",
                retry_in=0.0,
                runtime=0.25,
                worker=first.worker,
            )
        ]
    )
    [second] = broker.claim(["default"], 1, "djqueue@gone.1.xyz", 30.0, limited=False)
    broker.finish(
        [
            Outcome(
                second.id,
                second.attempt,
                second.task_name,
                states.FAILURE,
                error_type="ConnectionError",
                error_message="<down>",
                traceback=TRACEBACK,
                runtime=0.5,
                worker=second.worker,
            )
        ]
    )
    html = page(admin_client, Job.objects.get(pk=sent.id))
    table = html[html.index('id="djq-timeline"') :]
    rows = table.split("<tr data-outcome=")[1:]
    assert [row.split('"')[1] for row in rows] == ["RETRY", "FAILURE"]
    assert "djqueue@web-7.42.abc" in rows[0] and "<td>web-7</td>" in rows[0]
    assert "OSError flaky" in rows[0]
    assert "djqueue@gone.1.xyz" in rows[1] and "<td>-</td>" in rows[1]  # no row, no host
    for row in rows:
        claimed = row.split("<time")[1]  # claimed, then started, ended
        assert 'datetime="20' in claimed
    assert " s</td>" in rows[1]


def test_the_traceback_shows_the_users_frames_first_and_folds_library_frames(
    admin_client: Client,
) -> None:
    job = JobFactory(task_name=ADD, state=states.FAILURE, attempt=1, traceback=TRACEBACK)
    html = page(admin_client, job)
    block = html[html.index('id="djq-traceback"') :]
    assert block.index("ConnectionError: &lt;down&gt;") < block.index("Your code")
    user = block[block.index('class="djq-user-frames"') : block.index("</ol>")]
    assert "/srv/shop/tasks.py" in user and "build_report" in user
    assert "site-packages" not in user
    assert block.count('<details class="djq-library-frames">') == 2
    assert "&lt;ConnectionError&gt;" in block and "<ConnectionError>" not in block


def test_retry_is_not_offered_while_another_job_holds_the_unique_key(
    admin_client: Client,
) -> None:
    key = "tests.testapp.tasks.unique_report:report:7"
    failed = JobFactory(task_name=ADD, state=states.FAILURE, unique_key=key)
    assert "retry" in offered(page(admin_client, failed))
    JobFactory(task_name=ADD, unique_key=key)
    html = page(admin_client, failed)
    assert offered(html) == {"run-again"}
    assert 'data-kind="unique-key"' in html
