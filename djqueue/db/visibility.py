"""Whether a job can be seen outside the transaction of the thread that asks."""

from __future__ import annotations

import contextlib
import uuid

from djqueue.db import listener, sql


def seen_elsewhere(job_id: uuid.UUID) -> bool:
    """Whether another session sees job ``job_id``: the transaction that sent it has
    committed. Asked on a connection of its own, opened for the question."""
    with contextlib.closing(listener.connect()) as conn:
        return conn.execute(sql.JOB_VISIBLE, [job_id]).fetchone() is not None
