"""Why a job is not running (or, held by a worker that died, not getting anywhere):
reasons computed from the rows around it
(``djqueue.db.waiting``), for the job page (docs/monitoring.md#why-it-is-waiting).

Each reason is a record with its kind, a sentence, and links to what it names; several
may hold at once (a job may be not due yet *and* in a paused queue). A job that runs or
has ended has none, except a finished unique job whose key another job holds.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Literal

from django.urls import reverse

from djqueue.core import ids, states
from djqueue.db import waiting
from djqueue.ops import access, durations, links

Kind = Literal[
    "upstream",
    "not-due",
    "paused",
    "no-worker",
    "rate-limit",
    "concurrency-limit",
    "queue-limit",
    "queued",
    "reserved",
    "lost-worker",
    "unique-key",
]


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Reason:
    """One thing that holds the job back (or, for ``queued``, where it stands)."""

    kind: Kind
    text: str
    links: tuple[Link, ...] = field(default=())

    @property
    def label(self) -> str:
        """The kind as a page names it: "rate limit", "not due"."""
        return self.kind.replace("-", " ")


def of(job_id: uuid.UUID, visible: access.Visible) -> list[Reason]:
    """Why job ``job_id`` is not running now; [] when it runs, ended, or does not exist.

    ``visible``: what the reader may open; links to pages they may not see are left out.
    """
    found = waiting.read(job_id)
    return [] if found is None else reasons(found, visible)


def title(state: str) -> str:
    """The heading of the reasons on the page of a job in ``state``."""
    if state in states.WAITING or state == states.RECEIVED:
        return "Why it is waiting"
    if state == states.STARTED:
        return "Why it is not getting anywhere"
    return "What holds it back"


def reasons(job: waiting.Surroundings, visible: access.Visible) -> list[Reason]:
    """The reasons for ``job``, most fundamental first."""
    if job.state in states.HELD and not job.worker_alive:
        return [_lost_worker(job, visible)]
    if job.state == states.RECEIVED:
        return [_reserved(job)]
    if not job.waiting:
        return [_unique(job)] if job.unique_holder is not None else []
    found: list[Reason] = []
    if job.waits_upstream:
        found.append(_upstream(job))
    elif job.eta > job.now:
        found.append(_not_due(job))
    if job.paused_since is not None:
        found.append(_paused(job, visible))
    if job.live_serving == 0:
        found.append(_unserved(job, visible))
    if job.rate is not None and (job.rate.used >= job.rate.limit or job.rate.ahead):
        found.append(_rate(job, job.rate))
    held = job.concurrency
    if held is not None and (held.held >= held.limit or held.ahead):
        found.append(_concurrency(job, held))
    if job.queue_limits is not None and job.queue_limits.full:
        found.append(_queue_limits(job, job.queue_limits, visible))
    if not found and job.ahead is not None:
        found.append(_queued(job))
    return found


def _job_link(job: waiting.JobBrief) -> Link:
    return Link(
        f"{job.task_name} [{ids.short(job.id)}] {job.state}",
        reverse("admin:djqueue_job_change", args=[job.id]),
    )


def _upstream(job: waiting.Surroundings) -> Reason:
    if job.chord is not None:
        chord = job.chord
        left = chord.remaining if chord.remaining is not None else len(chord.unfinished)
        return Reason(
            "upstream",
            f"It is the body of a chord and waits for its header: {left} of "
            f"{chord.members} header job(s) not finished yet.",
            tuple(_job_link(member) for member in chord.unfinished),
        )
    if job.parent is not None:
        return Reason(
            "upstream",
            "It is a workflow step and waits for the step before it to succeed "
            f"({job.parent.state} now).",
            (_job_link(job.parent),),
        )
    return Reason("upstream", "It is a workflow step and waits for the step before it.")


def _not_due(job: waiting.Surroundings) -> Reason:
    retry = "Its next attempt (a retry) is" if job.state == states.RETRY else "It is"
    return Reason(
        "not-due",
        f"{retry} not due until {_moment(job.eta)} ({_span(job.eta - job.now)} from now).",
    )


def _paused(job: waiting.Surroundings, visible: access.Visible) -> Reason:
    assert job.paused_since is not None
    queues = (Link("queues", reverse("admin:djqueue_queue_changelist")),)
    return Reason(
        "paused",
        f"Its queue {job.queue!r} is paused (since {_moment(job.paused_since)}): no "
        "worker takes jobs from it until it is resumed.",
        queues if visible.queues else (),
    )


def _unserved(job: waiting.Surroundings, visible: access.Visible) -> Reason:
    others = f" ({job.live_workers} live worker(s) serve other queues)" if job.live_workers else ""
    workers = (Link("workers", reverse("admin:djqueue_worker_changelist")),)
    return Reason(
        "no-worker",
        f"No live worker serves its queue {job.queue!r}{others}: start one with "
        f"'manage.py runworker -Q {job.queue}'.",
        workers if visible.workers else (),
    )


def _rate(job: waiting.Surroundings, rate: waiting.RateUse) -> Reason:
    text = (
        f"The rate limit of {rate.task_name} ({rate.limit} start(s) per "
        f"{_span(datetime.timedelta(seconds=rate.period))}) holds it: {rate.used} started "
        "in the last period"
    )
    if rate.used >= rate.limit and rate.oldest is not None:
        free = rate.oldest + datetime.timedelta(seconds=rate.period)
        text += f", the next start is allowed at {_moment(free)}"
    return Reason(
        "rate-limit",
        f"{text}; {_ahead(rate.ahead)} under this limit ahead of it.",
        (Link("jobs of this task", links.jobs(task=rate.task_name, state__in=links.WAITING)),),
    )


def _concurrency(job: waiting.Surroundings, limit: waiting.ConcurrencyUse) -> Reason:
    return Reason(
        "concurrency-limit",
        f"The concurrency limit of key {limit.key!r} ({limit.limit} at once) holds it: "
        f"{limit.held} running now; {_ahead(limit.ahead)} with this key ahead of it.",
        (
            Link(
                "jobs with this key",
                links.jobs(concurrency_key__exact=limit.key, state__in=links.HELD),
            ),
        ),
    )


def _queue_limits(
    job: waiting.Surroundings, limits: waiting.QueueUse, visible: access.Visible
) -> Reason:
    parts = []
    if limits.concurrency is not None:
        parts.append(f"{limits.held} of its jobs held by workers, {limits.concurrency} at once")
    if limits.rate is not None and limits.period is not None:
        period = _span(datetime.timedelta(seconds=limits.period))
        used = f"{limits.used} started in the last {period}, {limits.rate} allowed"
        if limits.used >= limits.rate and limits.oldest is not None:
            free = limits.oldest + datetime.timedelta(seconds=limits.period)
            used += f" (the next start is allowed at {_moment(free)})"
        parts.append(used)
    ahead = f"; {_ahead(job.ahead)} ahead of it in the queue" if job.ahead is not None else ""
    held = (
        Link("jobs of this queue held", links.jobs(state__in=links.HELD, queue__exact=job.queue)),
    )
    queues = (Link("queues", reverse("admin:djqueue_queue_changelist")),)
    return Reason(
        "queue-limit",
        f"The limits of its queue {job.queue!r} hold it: {'; '.join(parts)}{ahead}.",
        held + (queues if visible.queues else ()),
    )


def _queued(job: waiting.Surroundings) -> Reason:
    ahead = job.ahead or 0
    text = (
        f"It is due and first in line in queue {job.queue!r}: a worker takes it at its next claim."
        if not ahead
        else f"It is due and waits its turn: {_ahead(ahead)} ahead of it in queue {job.queue!r}."
    )
    return Reason("queued", text, (Link("waiting jobs", links.waiting(job.queue)),))


def _reserved(job: waiting.Surroundings) -> Reason:
    since = f" at {_moment(job.claimed_at)}" if job.claimed_at else ""
    return Reason(
        "reserved",
        f"Worker {job.worker!r} claimed it{since} and holds it in its buffer until a slot "
        "of its pool is free.",
        (Link("jobs this worker holds", links.held_by(job.worker)),),
    )


def _lost_worker(job: waiting.Surroundings, visible: access.Visible) -> Reason:
    if job.worker_stopped_at is not None:
        heard = f"stopped at {_moment(job.worker_stopped_at)} without handing it back"
    elif job.worker_heard_at is not None:
        heard = f"has sent no heartbeat since {_moment(job.worker_heard_at)}"
    else:
        heard = "is not known (no worker row)"
    back = (
        f"when its lease runs out at {_moment(job.lease_expires_at)}"
        if job.lease_expires_at is not None and job.lease_expires_at > job.now
        else "at the next rescue (its lease has run out)"
    )
    held = (Link("jobs this worker holds", links.held_by(job.worker)),)
    return Reason(
        "lost-worker",
        f"Its worker {job.worker!r} {heard}: the job goes back to its queue {back}, "
        "taken back by any live worker.",
        held if visible.jobs else (),
    )


def _unique(job: waiting.Surroundings) -> Reason:
    assert job.unique_holder is not None
    return Reason(
        "unique-key",
        f"Its unique key {job.unique_key!r} is held by another waiting job: a retry "
        "leaves this one as it is while that one waits.",
        (
            Link(
                f"job {ids.short(job.unique_holder)}",
                reverse("admin:djqueue_job_change", args=[job.unique_holder]),
            ),
        ),
    )


def _ahead(count: int) -> str:
    if count >= waiting.AHEAD_BOUND:
        return f"{waiting.AHEAD_BOUND:,}+ job(s)"
    return f"{count:,} job(s)" if count != 1 else "1 job"


def _moment(at: datetime.datetime | None) -> str:
    if at is None:
        return "-"
    return durations.moment(at)


def _span(delta: datetime.timedelta) -> str:
    seconds = max(0.0, delta.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
