import itertools
from typing import Any

import pytest
from django.urls import reverse

from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_job_pages_show_rows_and_escape_their_data(admin_client: Any) -> None:
    job = JobFactory(
        task_name="tests.testapp.tasks.echo",
        state="FAILURE",
        args=["<script>alert(1)</script>"],
        traceback="<script>boom()</script>",
    )
    listing = admin_client.get(reverse("admin:djqueue_job_changelist"))
    assert listing.status_code == 200
    assert str(job.id) in listing.content.decode()
    detail = admin_client.get(reverse("admin:djqueue_job_change", args=[job.id]))
    page = detail.content.decode()
    assert detail.status_code == 200
    assert "<script>alert(1)</script>" not in page
    assert "<script>boom()</script>" not in page
    assert "&lt;script&gt;boom()&lt;/script&gt;" in page


def test_jobs_cannot_be_edited_or_deleted_from_the_admin(admin_client: Any) -> None:
    job = JobFactory()
    url = reverse("admin:djqueue_job_change", args=[job.id])
    admin_client.post(url, {"state": "SUCCESS"})
    job.refresh_from_db()
    assert job.state == "PENDING"
    delete = admin_client.post(reverse("admin:djqueue_job_delete", args=[job.id]), {"post": "yes"})
    assert delete.status_code == 403


def test_worker_list(admin_client: Any) -> None:
    response = admin_client.get(reverse("admin:djqueue_worker_changelist"))
    assert response.status_code == 200


def test_dashboard_needs_view_permission(client: Any, django_user_model: Any) -> None:
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:djqueue_dashboard")).status_code == 403
    client.logout()
    anonymous = client.get(reverse("admin:djqueue_dashboard"))
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]


def test_job_list_links_to_the_dashboard(admin_client: Any) -> None:
    page = admin_client.get(reverse("admin:djqueue_job_changelist")).content.decode()
    assert reverse("admin:djqueue_dashboard") in page


def test_throughput_lists_every_minute_of_the_window() -> None:
    import datetime

    from django.utils import timezone

    from djqueue.ops import stats

    JobFactory(state="SUCCESS", finished_at=timezone.now() - datetime.timedelta(minutes=30))
    minutes = stats.throughput(hours=1)
    assert len(minutes) == 61
    assert sum(m.succeeded for m in minutes) == 1
    steps = {later.at - earlier.at for earlier, later in itertools.pairwise(minutes)}
    assert steps == {datetime.timedelta(minutes=1)}


def test_job_list_colours_states_and_filters_by_task(admin_client: Any) -> None:
    JobFactory(task_name="tests.testapp.tasks.fail", state="FAILURE")
    JobFactory(task_name="tests.testapp.tasks.add")
    url = reverse("admin:djqueue_job_changelist")
    page = admin_client.get(url).content.decode()
    assert "color: #ba2121" in page and ">FAILURE<" in page
    filtered = admin_client.get(url, {"task": "tests.testapp.tasks.fail"}).content.decode()
    assert "tests.testapp.tasks.add</td>" not in filtered
    assert "tests.testapp.tasks.fail" in filtered


def test_search_by_id_or_by_words(admin_client: Any) -> None:
    job = JobFactory(task_name="tests.testapp.tasks.echo")
    url = reverse("admin:djqueue_job_changelist")
    assert str(job.id) in admin_client.get(url, {"q": str(job.id)}).content.decode()
    by_words = admin_client.get(url, {"q": "echo"})
    assert by_words.status_code == 200
    assert str(job.id) in by_words.content.decode()


def test_job_detail_shows_call_and_outcome(admin_client: Any) -> None:
    job = JobFactory(state="SUCCESS", args=[1, "<i>two</i>"], kwargs={"k": 3}, result={"ok": True})
    page = admin_client.get(reverse("admin:djqueue_job_change", args=[job.id])).content.decode()
    assert "&lt;i&gt;two&lt;/i&gt;" in page
    assert "&quot;ok&quot;: true" in page
    assert '"k": 3' in page.replace("&quot;", '"')


def test_worker_page_shows_status_and_running_jobs(admin_client: Any) -> None:
    import datetime

    from django.utils import timezone

    from djqueue.db import broker
    from djqueue.db.models import Worker
    from tests.factories import StartedJobFactory

    broker.register_worker("alive.1", "host", 1, "threads", 4, ["default"])
    broker.register_worker("lost.2", "host", 2, "threads", 4, ["default"])
    Worker.objects.filter(name="lost.2").update(
        last_heartbeat=timezone.now() - datetime.timedelta(hours=1)
    )
    StartedJobFactory.create_batch(2, worker="alive.1")
    page = admin_client.get(reverse("admin:djqueue_worker_changelist")).content.decode()
    assert ">alive<" in page and ">lost<" in page
    assert '<td class="field-running_now">2</td>' in page


def test_unfiltered_job_list_does_not_count_the_table(admin_client: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.testapp import tasks

    tasks.noop.delay_many([() for _ in range(12_000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE djqueue_job")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:djqueue_job_changelist"))
    assert response.status_code == 200
    counts = [q["sql"] for q in queries if "COUNT(*)" in q["sql"] and "djqueue_job" in q["sql"]]
    assert all("WHERE" in sql for sql in counts), counts
    assert "12" in response.content.decode()  # the estimate is shown ("12000 jobs" or so)
