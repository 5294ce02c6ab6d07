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
