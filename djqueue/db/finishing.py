"""Finishing: writing the outcomes of jobs in batches, fenced by attempt and worker, with
what follows them in their workflow, and counting the kills of jobs that killed their
process."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from djqueue.core import conf
from djqueue.core.records import Outcome
from djqueue.db import sql
from djqueue.db.cursors import queue_cursor

logger = logging.getLogger("djqueue.broker")


def finish(outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    """Record ``outcomes``; return the ids whose write was fenced off as stale.

    Jobs of a workflow are left out by the hot statement and written by a second one
    that also starts what follows them (see ``sql.FINISH_WORKFLOW``). Outcomes of jobs
    that killed their process are counted first (see :func:`_count_kills`).
    """
    if not outcomes:
        return set()
    if any(o.killed for o in outcomes):
        with transaction.atomic(using=conf.database()):
            return _finish_all(_count_kills(outcomes))
    return _finish_all(outcomes)


def _finish_all(outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    # A retry, or a requeue (Reject(requeue=True)), goes back to waiting.
    retrying = any(o.state in ("RETRY", "PENDING") for o in outcomes)
    written = _finish(sql.FINISH_RETRYING if retrying else sql.FINISH, outcomes)
    if len(written) < len(outcomes):
        rest = [o for o in outcomes if o.job_id not in written]
        written |= _finish(sql.FINISH_WORKFLOW, rest)
    stale = {o.job_id for o in outcomes} - written
    if stale:
        _report_stale([o for o in outcomes if o.job_id in stale])
    return stale


def _report_stale(outcomes: Sequence[Outcome]) -> None:
    """Log why each of ``outcomes`` was fenced off, read from its job's row.

    Rare, so the extra read costs the common batch nothing. Most were rescued and
    claimed again (a newer attempt); but an outcome written again after the reply to its
    first write was lost with the connection finds its job already ended under the
    same attempt and worker, and saying "rescued" then would send an operator looking
    for an outage of the worker that never happened.
    """
    with queue_cursor() as cursor:
        cursor.execute(sql.FENCED_ROWS, [[o.job_id for o in outcomes]])
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    for outcome in outcomes:
        attempt, worker, state = rows.get(outcome.job_id, (None, None, None))
        if state is None:
            logger.warning(
                "Ignored an outcome for job %s: the job no longer exists.", outcome.job_id
            )
        elif (attempt, worker) == (outcome.attempt, outcome.worker):
            logger.warning(
                "Did not write the outcome of job %s again: it already ended %s under "
                "this attempt (the reply to an earlier write of it was lost).",
                outcome.job_id,
                state,
            )
        else:
            logger.warning(
                "Ignored a late outcome for job %s: it was rescued after its lease expired "
                "and belongs to a newer attempt now.",
                outcome.job_id,
            )


def _finish(statement: str, outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    """Run a finish statement for ``outcomes``; return the ids it wrote."""
    columns: list[list[Any]] = [
        [o.job_id for o in outcomes],
        [o.attempt for o in outcomes],
        [o.state for o in outcomes],
        [o.result for o in outcomes],
        [o.error_type for o in outcomes],
        [o.error_message for o in outcomes],
        [o.traceback for o in outcomes],
        [o.retry_in for o in outcomes],
        [o.retry_at for o in outcomes],
        [o.worker for o in outcomes],
        [o.runtime for o in outcomes],
    ]
    with queue_cursor() as cursor:
        cursor.execute(statement, columns)
        row = cursor.fetchone()
    return set(row[0] or []) if row else set()


def _count_kills(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Count the kills among ``outcomes``; quarantine jobs that reached the limit.

    A job whose run killed its process ``QUARANTINE_AFTER_KILLS`` times ends FAILURE
    instead of running again. The count is written before the outcome: should the
    outcome then be lost, the kill still counts, as it happened.
    """
    killed = [o for o in outcomes if o.killed]
    columns: list[list[Any]] = [
        [o.job_id for o in killed],
        [o.attempt for o in killed],
        [o.worker for o in killed],
    ]
    with queue_cursor() as cursor:
        cursor.execute(sql.COUNT_KILL, columns)
        kills = {row[0]: row[1] for row in cursor.fetchall()}
    limit = conf.optional_integer("QUARANTINE_AFTER_KILLS")
    return [_quarantined(o, kills[o.job_id], limit) if o.job_id in kills else o for o in outcomes]


def _quarantined(outcome: Outcome, kills: int, limit: int | None) -> Outcome:
    if limit is None or kills < limit:
        return outcome
    return dataclasses.replace(
        outcome,
        state="FAILURE",
        error_type="djqueue.exceptions.WorkerLostError",
        error_message=(
            f"killed its worker process {kills} times (the last one {outcome.killed}); "
            "not run again: quarantined after QUARANTINE_AFTER_KILLS kills"
        ),
        retry_in=None,
        retry_at=None,
    )
