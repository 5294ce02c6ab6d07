import datetime
import uuid
from typing import Any

import pytest
from django.utils import timezone

from djqueue.core import states
from tests.factories import JobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(admin_client: Any) -> Any:
    """A user who may read every job's status and the metrics (see test_access)."""
    return admin_client


def test_job_status_of_a_pending_job(client: Any) -> None:
    result = tasks.add.delay(1, 2)
    body = client.get(f"/tasks/jobs/{result.id}/").json()
    assert body == {
        "id": str(result.id),
        "task": "tests.testapp.tasks.add",
        "state": "PENDING",
        "ready": False,
        "retries": 0,
        "attempt": 0,
        "progress": None,
    }


def test_job_status_shows_result_or_error(client: Any) -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    done = JobFactory(state=states.SUCCESS, result={"at": when}, finished_at=timezone.now())
    failed = JobFactory(
        state=states.FAILURE,
        error_type="ValueError",
        error_message="bad",
        traceback="secret frames",
    )
    assert client.get(f"/tasks/jobs/{done.id}/").json()["result"] == {"at": "2026-01-02T03:04:05Z"}
    body = client.get(f"/tasks/jobs/{failed.id}/").json()
    assert body["error"] == {"type": "ValueError", "message": "bad"}
    assert "secret frames" not in str(body)


def test_job_status_unknown_and_wrong_method(client: Any) -> None:
    missing = uuid.uuid4()
    response = client.get(f"/tasks/jobs/{missing}/")
    assert response.status_code == 404
    assert response.json()["error"] == "no such job"
    assert client.post(f"/tasks/jobs/{missing}/").status_code == 405
    assert client.get("/tasks/jobs/not-a-uuid/").status_code == 404
