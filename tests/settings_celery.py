"""The test settings with a Celery project's settings added, as it brings them along
(read by workers started with --settings=tests.settings_celery)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

CELERY_BROKER_URL = "redis://localhost:6379/0"
CELERY_IMPORTS = ["tests.testapp.jobs"]
CELERY_TASK_ROUTES = {"tests.testapp.jobs.*": {"queue": "shipping"}}
CELERY_WORKER_CONCURRENCY = 3
CELERY_TASK_SOFT_TIME_LIMIT = 1
CELERY_TASK_TIME_LIMIT = 20
