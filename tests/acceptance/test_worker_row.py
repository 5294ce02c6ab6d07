"""The Worker row a running worker keeps current: prefork children and their jobs."""

from __future__ import annotations

import pytest

from djqueue.db.models import Worker
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_prefork_children_are_reported_with_their_jobs(workers: Workers) -> None:
    worker = workers.start("-P", "prefork", "-c", "2")
    result = tasks.sleep.delay(3)

    def children() -> list[dict[str, object]]:
        row = Worker.objects.filter(name__startswith=worker.name_prefix).first()
        return row.children if row else []

    busy = wait_until(
        lambda: [c for c in children() if c.get("job") == str(result.id)],
        timeout=10,
        what="the worker row to list the child running the job",
    )
    assert len(children()) == 2
    assert all(isinstance(child["pid"], int) and child["pid"] > 0 for child in children())
    assert busy[0]["pid"] != worker.pid
    assert result.get(timeout=10) == 3
