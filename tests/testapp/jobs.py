"""Tasks outside ``tasks.py``, loaded by workers through the IMPORTS setting
(``CELERY_IMPORTS`` in ``tests.settings_celery``)."""

from __future__ import annotations

import djqueue


@djqueue.shared_task
def ship(order_id: int) -> str:
    return f"order {order_id} shipped"
