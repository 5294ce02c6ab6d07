"""A job's attempts, oldest first, as the job page lists them (docs/monitoring.md).

Earlier attempts come from the row's history (each retried, lost, handed-back or failed
and retried attempt), the latest from the row's own columns.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.utils.dateparse import parse_datetime

from djqueue.core import states
from djqueue.db import attempts
from djqueue.db.models import Job
from djqueue.ops import job_values

# Attempts listed on a job page (the latest ones).
SHOWN_ATTEMPTS = 100


@dataclass(frozen=True)
class Attempt:
    number: int | None
    outcome: str  # a state, or RETRY, LOST, RELEASED, REQUEUED for earlier attempts
    worker: str
    host: str  # "" when the worker's row is gone
    claimed_at: datetime.datetime | None
    started_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    error: str

    @property
    def runtime(self) -> datetime.timedelta | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class Timeline:
    attempts: tuple[Attempt, ...]
    hidden: int  # earlier attempts left out


def of(job: Job) -> Timeline:
    """The latest :data:`SHOWN_ATTEMPTS` attempts of ``job``, oldest first."""
    entries = [entry for entry in job.history or [] if isinstance(entry, dict)]
    # A waiting job's columns describe no attempt of their own: its last one, if any,
    # went back to waiting and is in the history.
    current = bool(job.attempt) and job.state not in states.WAITING
    hidden = max(0, len(entries) + current - SHOWN_ATTEMPTS)
    entries = entries[hidden:]
    names = [str(entry.get("worker") or "") for entry in entries] + [job.worker]
    found = attempts.hosts(names)
    made = [_earlier(entry, found) for entry in entries]
    if current:
        made.append(_latest(job, found))
    return Timeline(tuple(made), hidden)


def _earlier(entry: dict[str, Any], hosts: dict[str, str]) -> Attempt:
    worker = str(entry.get("worker") or "")
    number = entry.get("attempt")
    return Attempt(
        number=number if isinstance(number, int) else None,
        outcome=str(entry.get("outcome") or ""),
        worker=worker,
        host=hosts.get(worker, ""),
        claimed_at=_moment(entry.get("claimed_at")),
        started_at=_moment(entry.get("started_at")),
        ended_at=_moment(entry.get("ended_at")),
        error=job_values.attempt_error(entry.get("error_type"), entry.get("error_message")),
    )


def _latest(job: Job, hosts: dict[str, str]) -> Attempt:
    failed = job.state != states.SUCCESS
    return Attempt(
        number=job.attempt,
        outcome=job.state,
        worker=job.worker,
        host=hosts.get(job.worker, ""),
        claimed_at=job.claimed_at,
        started_at=job.started_at,
        ended_at=job.finished_at,
        error=job_values.attempt_error(job.error_type, job.error_message) if failed else "",
    )


def _moment(value: object) -> datetime.datetime | None:
    """A moment as the history stores it (JSON text); None when missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None
