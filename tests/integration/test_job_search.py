"""The job list's search (djqueue.db.search): what each kind of term finds, and that
each part of it is served by its index."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from djqueue.db import search
from djqueue.db.models import Job
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def found(term: str) -> set[Any]:
    return set(search.filtered(Job.objects.all(), term).values_list("id", flat=True))


def test_an_id_or_its_first_characters_finds_the_job() -> None:
    job, other = JobFactory(), JobFactory()
    text = str(job.id)
    assert found(text) == {job.id}
    assert found(text.upper()) == {job.id}
    assert job.id in found(text[:8]) and other.id not in found(text.replace("-", "")[:31])
    assert found(text.replace("-", "")[:20]) == {job.id}
    assert found(text[:13]) >= {job.id}


def test_a_value_finds_jobs_called_with_it_positionally_or_by_keyword() -> None:
    number = JobFactory(args=[42, "x"])
    text = JobFactory(args=["42"])
    keyword = JobFactory(args=[], kwargs={"order": 42, "email": "ann@example.com"})
    nested = JobFactory(args=[{"order": "42"}])
    JobFactory(args=[420], kwargs={"order": 7})
    assert found("42") == {number.id, text.id}
    assert found('"42"') == {text.id}
    assert found("order=42") == {keyword.id, nested.id}
    assert found("ann@example.com") == set()  # a keyword's value needs its name
    assert found("email=ann@example.com") == {keyword.id}
    assert found("order=7") != set() and found("order=8") == set()


def test_text_finds_jobs_by_their_error_type_or_message_in_any_case() -> None:
    refused = JobFactory(
        state="FAILURE", error_type="ConnectionError", error_message="Connection refused: db-7"
    )
    percent = JobFactory(state="FAILURE", error_type="ValueError", error_message="100% _done_")
    JobFactory(state="SUCCESS")
    assert found("connection REFUSED") == {refused.id}
    assert found("ConnectionError") == {refused.id}
    assert found("db-7") == {refused.id}
    assert found("0% _d") == {percent.id}
    assert found("0%") == set()  # too short for trigrams: not searched as text
    assert found("x_d") == set()  # _ and % are matched as themselves


def test_part_of_a_registered_task_name_finds_its_jobs() -> None:
    echo = JobFactory(task_name="tests.testapp.tasks.echo")
    JobFactory(task_name="tests.testapp.tasks.add")
    assert found("testapp.tasks.ech") == {echo.id}


def test_a_term_finding_nothing_finds_nothing_and_odd_input_is_harmless() -> None:
    JobFactory(args=[1])
    for term in ["nothing-here", "NaN", "Infinity", "{", "a=", "=", "'; DROP TABLE x; --"]:
        assert found(term) == set(), term
    assert len(found("   ")) == 1


def _plan(term: str) -> str:
    query = search.filtered(Job.objects.all(), term)
    sql, params = query.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # On a table this small the planner would read it whole (or walk the primary
        # key); with bitmap scans only, the plan shows which indexes serve the search.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_values_are_found_among_the_newest_jobs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    older = JobFactory(args=[42])
    newer = [JobFactory(args=[42]), JobFactory(args=[7])]
    failed = JobFactory(args=[1], state="FAILURE", error_message="42 refused")
    monkeypatch.setattr(search, "ARGUMENT_WINDOW", 3)
    assert found("42") == {newer[0].id}
    # Ids and error text are searched in every job, old or new.
    assert found(str(older.id)) == {older.id}
    assert found("42 refused") == {failed.id}
    monkeypatch.setattr(search, "ARGUMENT_WINDOW", 4)
    assert found("42") == {older.id, newer[0].id}


@pytest.mark.parametrize(
    ("term", "indexes"),
    [
        ("42", ["djqueue_job_pkey"]),
        ("order=42", ["djqueue_job_pkey"]),
        ("refused", ["djqueue_job_pkey", "djqueue_job_error_search"]),
        ("0a1b2c", ["djqueue_job_pkey", "djqueue_job_error_search"]),
    ],
)
def test_every_part_of_a_search_is_served_by_an_index(
    term: str, indexes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    JobFactory.create_batch(3, state="FAILURE", error_message="Connection refused")
    # Values are read among the newest jobs: a range of the primary key.
    monkeypatch.setattr(search, "ARGUMENT_WINDOW", 2)
    plan = _plan(term)
    assert "Seq Scan" not in plan, plan
    for index in indexes:
        assert f"Bitmap Index Scan on {index}" in plan, plan
