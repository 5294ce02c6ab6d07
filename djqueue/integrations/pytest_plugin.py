"""pytest fixtures for projects using djqueue (loaded automatically when installed).

- ``djqueue_jobs``: run, list and assert on enqueued jobs (needs database access).
- ``djqueue_eager``: run tasks at send time for the duration of a test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from djqueue.core.records import Outcome
    from djqueue.db.models import Job


class Jobs:
    """What the ``djqueue_jobs`` fixture gives a test."""

    # ``testing`` is imported in each method, not at the top: pytest loads this plugin
    # before Django is set up, and ``testing`` imports the models.

    def run_pending(self, queues: Sequence[str] | None = None) -> list[Outcome]:
        from djqueue.integrations import testing

        return testing.run_pending(queues)

    def enqueued(self, task: Any = None, state: str | None = "PENDING") -> QuerySet[Job]:
        from djqueue.integrations import testing

        return testing.enqueued(task, state)

    def assert_enqueued(self, task: Any, *args: Any, **kwargs: Any) -> list[Job]:
        from djqueue.integrations import testing

        return testing.assert_enqueued(task, *args, **kwargs)


@pytest.fixture
def djqueue_jobs(db: None) -> Jobs:
    """Helpers to run and inspect jobs the code under test enqueued."""
    return Jobs()


@pytest.fixture
def djqueue_eager(settings: Any) -> Iterator[None]:
    """Run tasks at send time (``DJQUEUE["EAGER"] = True``) during the test."""
    settings.DJQUEUE = {
        **getattr(settings, "DJQUEUE", {}),
        "EAGER": True,
        # A task's error fails the test where the task is sent.
        "EAGER_PROPAGATES": True,
    }
    yield
