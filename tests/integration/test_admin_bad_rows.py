"""Rows that came through other doors (SQL, other programs) never break an admin page,
and no value makes a page as big as itself."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from djqueue.core import states
from tests.factories import JobFactory, StartedJobFactory

pytestmark = pytest.mark.django_db

NOTE = "could not be decoded"
BIG = 1_000_000
# Five values of up to about 10,000 characters each, and the page around them.
PAGE_LIMIT = 100_000


def enqueue_from_sql(args: str, kwargs: str = "{}") -> str:
    """A job sent with djqueue_enqueue(), as a program that is not Python would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT djqueue_enqueue('tests.testapp.tasks.echo', %s::jsonb, %s::jsonb)",
            [args, kwargs],
        )
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def job_page(client: Any, job_id: object) -> str:
    response = client.get(reverse("admin:djqueue_job_change", args=[job_id]))
    assert response.status_code == 200
    return str(response.content.decode())


def job_list(client: Any) -> str:
    response = client.get(reverse("admin:djqueue_job_changelist"))
    assert response.status_code == 200
    return str(response.content.decode())


def test_arguments_that_cannot_be_decoded_are_shown_as_stored_with_a_note(
    admin_client: Any,
) -> None:
    job_id = enqueue_from_sql(
        '[{"__djqueue__": "decimal", "v": "x"}, {"__djqueue__": "decimal", "v": "1.5"}]',
        '{"when": {"__djqueue__": "datetime", "v": "not a date"}}',
    )
    assert job_id in job_list(admin_client)
    page = job_page(admin_client, job_id)
    assert page.count(NOTE) == 2  # args and kwargs
    shown = html.unescape(page)
    assert '"v": "x"' in shown and '"v": "1.5"' in shown  # as stored, the good one too
    assert '"v": "not a date"' in shown


def test_a_result_that_cannot_be_decoded_is_shown_as_stored_with_a_note(
    admin_client: Any,
) -> None:
    job = JobFactory(state=states.SUCCESS)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE djqueue_job SET result = %s::jsonb WHERE id = %s",
            ['{"total": {"__djqueue__": "decimal", "v": "lots"}}', job.id],
        )
    page = job_page(admin_client, job.id)
    assert page.count(NOTE) == 1
    assert '"v": "lots"' in html.unescape(page)


def test_arguments_nested_too_deeply_for_python_are_shown_as_stored(admin_client: Any) -> None:
    job_id = enqueue_from_sql("[" * 3000 + "]" * 3000)
    assert job_id in job_list(admin_client)
    page = job_page(admin_client, job_id)
    assert NOTE in page
    assert "[[[[[[[[" in page


def test_arguments_python_reads_but_cannot_walk_open_with_a_note(admin_client: Any) -> None:
    job_id = enqueue_from_sql("[" * 600 + "]" * 600)
    assert job_id in job_list(admin_client)
    assert "Nested too deeply to be shown here." in job_page(admin_client, job_id)


def test_a_job_page_shows_about_ten_thousand_characters_of_each_value(
    admin_client: Any,
) -> None:
    big = "x" * BIG
    failed = JobFactory(
        state=states.FAILURE,
        attempt=2,
        args=[big],
        kwargs={"k": big},
        error_type="ValueError",
        error_message=big,
        traceback="Traceback (most recent call last):\n" + big + "\nValueError: the last line",
        history=[{"attempt": 1, "outcome": "RETRY", "error_message": big}],
    )
    page = job_page(admin_client, failed.id)
    assert len(page) < PAGE_LIMIT
    # args, kwargs, the error message, and the error of each of the two attempts
    assert len(re.findall(r"\d{6} more characters", page)) == 5
    assert "ValueError: the last line" in page  # a traceback keeps its end
    assert "characters left out" in page

    succeeded = JobFactory(state=states.SUCCESS, result={"report": big})
    page = job_page(admin_client, succeeded.id)
    assert len(page) < PAGE_LIMIT
    assert len(re.findall(r"\d{6} more characters", page)) == 1


def test_the_job_list_stays_small_and_leaves_big_columns_unread(admin_client: Any) -> None:
    big = "x" * BIG
    StartedJobFactory(progress={"current": 1, "total": 2, "message": big})
    JobFactory.create_batch(3, args=[big], state=states.FAILURE, error_message=big)
    with CaptureQueriesContext(connection) as queries:
        page = job_list(admin_client)
    assert len(page) < PAGE_LIMIT
    assert "1/2" in page  # the progress, without its message (that is on the job's page)
    read = " ".join(query["sql"] for query in queries)
    assert '"djqueue_job"."args"' not in read
    assert '"djqueue_job"."error_message"' not in read


def test_a_job_page_lists_the_latest_hundred_attempts(admin_client: Any) -> None:
    history = [
        {"attempt": n, "outcome": "RETRY", "error_message": f"try {n}"} for n in range(1, 150)
    ]
    job = JobFactory(state=states.FAILURE, attempt=150, error_message="try 150", history=history)
    page = job_page(admin_client, job.id)
    assert "50 earlier attempt(s) not shown." in page
    assert "try 150" in page and "try 51<" in page and "try 50<" not in page
