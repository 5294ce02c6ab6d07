"""A database without djqueue's tables (or with older ones) gives one line: run migrate.

Each test hides a table or a column inside its own transaction, which the test's
rollback undoes: the real statements meet the real "does not exist" errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import ProgrammingError, connection, transaction
from django.urls import reverse

import djqueue
from djqueue.client.result import AsyncResult
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import broker, schema
from tests.factories import JobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

MIGRATE = "run `python manage.py migrate`"


def _hide(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@pytest.fixture
def no_job_table() -> Iterator[None]:
    _hide("ALTER TABLE djqueue_job RENAME TO djqueue_job_hidden")
    yield


@pytest.fixture
def no_periodic_tables() -> Iterator[None]:
    _hide(
        "ALTER TABLE djqueue_periodictask RENAME TO djqueue_periodictask_hidden",
        "ALTER TABLE djqueue_periodicrun RENAME TO djqueue_periodicrun_hidden",
    )
    yield


def _raised(call: Any) -> MigrationsMissing:
    # In a savepoint: the failed statement must not spoil the test's transaction.
    with pytest.raises(MigrationsMissing) as caught, transaction.atomic():
        call()
    return caught.value


def test_an_up_to_date_database_needs_nothing() -> None:
    assert schema.pending() == []
    schema.require()


def test_delay_says_to_migrate(no_job_table: None) -> None:
    error = _raised(lambda: tasks.add.delay(1, 2))
    assert str(error) == (
        f"djqueue's tables are missing from database 'default' "
        f"({connection.settings_dict['NAME']}): {MIGRATE}"
    )
    # Code that catches database errors still catches it.
    assert isinstance(error, ProgrammingError)
    assert error.__suppress_context__


def test_bulk_sends_and_workflows_say_to_migrate(no_job_table: None) -> None:
    assert MIGRATE in str(_raised(lambda: tasks.add.delay_many([(1, 2), (3, 4)])))
    assert MIGRATE in str(_raised(lambda: (tasks.add.s(1, 2) | tasks.add.s(3)).delay()))


def test_async_result_get_says_to_migrate() -> None:
    job = JobFactory()
    _hide("ALTER TABLE djqueue_job RENAME TO djqueue_job_hidden")
    assert MIGRATE in str(_raised(lambda: AsyncResult(job.id).get(timeout=1)))
    assert MIGRATE in str(_raised(lambda: AsyncResult(job.id).state))


def test_a_column_of_a_newer_migration_missing_says_to_migrate() -> None:
    _hide("ALTER TABLE djqueue_job RENAME COLUMN task_name TO task_name_hidden")
    message = str(_raised(lambda: tasks.add.delay(1, 2)))
    assert "djqueue's tables in database 'default'" in message
    assert "are older than this version of djqueue" in message
    assert 'column "task_name" of relation "djqueue_job" does not exist' in message
    assert message.endswith(MIGRATE)
    assert "\n" not in message


def test_a_missing_column_named_without_its_table_is_still_djqueues() -> None:
    # The claim names its columns bare or by an alias: PostgreSQL's error does not
    # name the table, but the statement is djqueue's own.
    _hide("ALTER TABLE djqueue_job RENAME COLUMN eta TO eta_hidden")
    claim = lambda: broker.claim(["default"], 5, "w1", 30.0, limited=False)  # noqa: E731
    message = str(_raised(claim))
    # (Named as the claim function reads it: bare or by its alias.)
    assert "older than this version of djqueue (column " in message
    assert 'eta" does not exist)' in message or "j.eta does not exist)" in message
    assert message.endswith(MIGRATE)


def test_other_programming_errors_pass_through_unchanged() -> None:
    with (
        pytest.raises(ProgrammingError) as caught,
        transaction.atomic(),
        schema.translated(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT * FROM table_of_the_project_itself")
    assert not isinstance(caught.value, MigrationsMissing)


@pytest.mark.parametrize(
    "page",
    ["admin:djqueue_job_changelist", "admin:djqueue_dashboard", "admin:djqueue_worker_changelist"],
)
def test_admin_pages_say_to_migrate(admin_client: Any, no_job_table: None, page: str) -> None:
    _hide("ALTER TABLE djqueue_worker RENAME TO djqueue_worker_hidden")
    with transaction.atomic():
        response = admin_client.get(reverse(page))
    assert response.status_code == 503
    text = response.content.decode()
    assert "djqueue&#x27;s tables are missing from database" in text
    assert "python manage.py migrate" in text
    assert "ProgrammingError" not in text


def test_the_overview_data_says_to_migrate_in_json(admin_client: Any, no_job_table: None) -> None:
    with transaction.atomic():
        response = admin_client.get(reverse("admin:djqueue_overview_data"))
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert "djqueue's tables are missing" in response.json()["error"]
    assert MIGRATE in response.json()["error"]


def test_a_job_page_says_to_migrate(admin_client: Any) -> None:
    job = JobFactory()
    _hide("ALTER TABLE djqueue_job RENAME TO djqueue_job_hidden")
    with transaction.atomic():
        response = admin_client.get(reverse("admin:djqueue_job_change", args=[job.id]))
    assert response.status_code == 503
    assert "python manage.py migrate" in response.content.decode()
    with transaction.atomic():
        pressed = admin_client.post(reverse("admin:djqueue_job_revoke", args=[job.id]))
    assert pressed.status_code == 503
    assert "python manage.py migrate" in pressed.content.decode()


def test_periodic_task_pages_say_to_migrate(admin_client: Any, no_periodic_tables: None) -> None:
    with transaction.atomic():
        listing = admin_client.get(reverse("admin:djqueue_periodictask_changelist"))
    with transaction.atomic():
        # Saving looks the name up (it is unique) in the missing table.
        added = admin_client.post(
            reverse("admin:djqueue_periodictask_add"),
            {"name": "nightly", "task": "tests.testapp.tasks.noop", "args": "[]", "kwargs": "{}"},
        )
    for response in (listing, added):
        assert response.status_code == 503
        assert "python manage.py migrate" in response.content.decode()


def test_the_job_status_view_says_to_migrate(client: Any, no_job_table: None) -> None:
    job_id = "01942a6e-0000-7000-8000-000000000000"
    token = djqueue.status_token(job_id)
    with transaction.atomic():
        response = client.get(reverse("djqueue:job-status", args=[job_id]), {"token": token})
    assert response.status_code == 503
    assert MIGRATE in response.json()["error"]


def test_admin_pages_work_with_the_tables(admin_client: Any) -> None:
    assert admin_client.get(reverse("admin:djqueue_job_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:djqueue_dashboard")).status_code == 200
