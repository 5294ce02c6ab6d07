"""Settings for the test suite: tasks run in the test process, errors propagate."""

from .settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
PAYMENT_GATEWAY_URL = "http://gateway.invalid/api"
