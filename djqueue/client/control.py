"""Control and inspection of workers, shaped like Celery's ``app.control``.

Commands travel through the database (:mod:`djqueue.db.control`): a row, announced on a
channel, that every live worker acts on at once, on any host. Lasting changes (time
and rate limits) are also applied by workers that start later; one-shot commands
(ping, shutdown, pool size, reports) reach the workers alive when they are sent.

Replies are gathered until ``timeout`` or until every live worker the command is for
has answered. What the database already knows is read from it instead of asking the
workers: the jobs each one holds (``active``, ``reserved``), the jobs waiting for their
time (``scheduled``), revoked jobs and each worker's queues (docs/control.md says why).

Why it is longer than 400 lines: it is Celery's ``app.control`` with its ``inspect()``,
and the commands and the reports share the checks of their arguments and destinations
and the gathering of replies (``_gather``, ``_destination``). The reports read from rows
(``active``, ``reserved``, ``scheduled``, ``revoked``) are the part that could move to a
module of their own.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from djqueue.core import conf, ids, limits, registry, signums, states
from djqueue.db import broker
from djqueue.db import control as wire

# Seconds a one-shot command stays valid for a worker that has not read it yet (one
# that missed the notification reads it at its next heartbeat).
ONE_SHOT_SECONDS = 60.0
# Longest wait between two readings of the replies: a reply whose notification never
# comes (LISTEN through a transaction-mode pooler) is still seen soon after it is written.
REPLY_READ_SECONDS = 0.25
# Most jobs listed per worker by active/reserved/scheduled/revoked.
LIST_LIMIT = 1000
# The levels log_level() takes, as runworker's --loglevel.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

Destination = str | Sequence[str] | None
Replies = list[dict[str, Any]]


# Commands -------------------------------------------------------------------------


def broadcast(
    command: str,
    arguments: dict[str, Any] | None = None,
    destination: Destination = None,
    reply: bool = False,
    timeout: float = 1.0,
    limit: int | None = None,
) -> Replies | None:
    """Send ``command`` to the workers (``destination``: names; None: all of them).

    With ``reply``, wait up to ``timeout`` seconds, or until every live worker it is
    for answered (or ``limit`` did), and return the replies as
    ``[{worker_name: reply}, ...]``; without, return None at once.
    """
    spec = COMMANDS.get(command)
    if spec is None:
        known = ", ".join(sorted(COMMANDS))
        raise ValueError(f"unknown control command {command!r}; known: {known}")
    names = _destination(destination)
    timeout = _positive(timeout, "timeout")
    with wire.Exchange() as exchange:
        control_id = exchange.send(
            command,
            arguments or {},
            names,
            ttl=None if spec.lasting else max(timeout, ONE_SHOT_SECONDS),
            key=spec.key(arguments or {}, names),
            listen=reply,
        )
        if not reply:
            return None
        return _gather(exchange, control_id, names, timeout, limit)


def revoke(
    task_id: str | uuid.UUID | Iterable[str | uuid.UUID],
    destination: Destination = None,
    terminate: bool = False,
    signal: str | int | None = None,
    **kwargs: Any,
) -> None:
    """Revoke one job or several by id; with ``terminate``, stop running ones too.

    The revocation is kept in each job's row: every worker, and any started later,
    honours it. ``signal`` (``"SIGTERM"``, ``"SIGKILL"``, a number) is what a prefork
    worker sends to the child running the job; other pools stop a job their own way
    (docs/stopping.md). With ``destination``, only jobs that those workers hold now
    (received or running) are revoked: a job waiting in the table belongs to no worker.
    """
    signum = signums.parse(signal)
    names = _destination(destination)
    job_ids = [task_id] if isinstance(task_id, str | uuid.UUID) else list(task_id)
    wanted = [ids.parse(value) for value in job_ids]
    if names is not None:
        held = _jobs().filter(id__in=wanted, state__in=states.HELD)
        holders = dict(held.values_list("id", "worker"))
        wanted = [job_id for job_id in wanted if wire.matches(names, holders.get(job_id, ""))]
    for job_id in wanted:
        broker.revoke(job_id, terminate=terminate, signum=signum)


def ping(destination: Destination = None, timeout: float = 1.0, **kwargs: Any) -> Replies:
    """``[{worker_name: {"ok": "pong"}}, ...]`` from the live workers that answered."""
    return broadcast("ping", {}, destination, reply=True, timeout=timeout) or []


def rate_limit(
    task_name: str,
    rate_limit: str | None,
    destination: Destination = None,
    reply: bool = False,
    timeout: float = 1.0,
    **kwargs: Any,
) -> Replies | None:
    """Change a task's rate limit (``"10/s"``, ``"100/m"``; None or ``"0"``: none).

    djqueue's rate limits hold across all workers: the new one applies to the task's
    waiting jobs now and to every job a worker claims from now on, also in workers
    that start later. So there is no ``destination``: one raises ``ValueError``.
    """
    if destination is not None:
        raise ValueError(
            "rate limits hold across all workers together (docs/limits.md), so a "
            "destination cannot narrow one; call rate_limit() without destination, or "
            "send the task to a queue of its own and pause that queue or limit its workers"
        )
    registry.get(task_name)
    rate = None if rate_limit in (None, "0", 0) else limits.parse_rate(rate_limit)
    broker.set_rate_limit(task_name, None if rate is None else (rate.count, rate.period))
    arguments = {"task_name": task_name, "rate_limit": rate_limit}
    return broadcast("rate_limit", arguments, destination, reply=reply, timeout=timeout)


def time_limit(
    task_name: str,
    soft: float | None = None,
    hard: float | None = None,
    destination: Destination = None,
    reply: bool = False,
    timeout: float = 1.0,
    **kwargs: Any,
) -> Replies | None:
    """Set a task's soft and hard time limits (seconds; None: none) on the workers,
    including those that start later (with ``destination``, later workers of those
    names); the latest call for a task and destination replaces the earlier ones."""
    registry.get(task_name)
    for value, name in ((soft, "soft"), (hard, "hard")):
        if value is not None:
            _positive(value, name)
    if soft is not None and hard is not None and soft > hard:
        raise ValueError(f"the soft time limit ({soft:g}s) must not pass the hard one ({hard:g}s)")
    arguments = {"task_name": task_name, "soft": soft, "hard": hard}
    return broadcast("time_limit", arguments, destination, reply=reply, timeout=timeout)


def pool_grow(
    n: int = 1, destination: Destination = None, reply: bool = False, timeout: float = 1.0
) -> Replies | None:
    """Add ``n`` slots to the workers' pools (prefork, threads, gevent)."""
    return broadcast("pool_grow", {"n": _count(n)}, destination, reply=reply, timeout=timeout)


def pool_shrink(
    n: int = 1, destination: Destination = None, reply: bool = False, timeout: float = 1.0
) -> Replies | None:
    """Remove ``n`` slots from the workers' pools (never below one)."""
    return broadcast("pool_shrink", {"n": _count(n)}, destination, reply=reply, timeout=timeout)


def shutdown(
    destination: Destination = None, reply: bool = False, timeout: float = 1.0, **kwargs: Any
) -> Replies | None:
    """Warm shutdown of the workers: they stop claiming and finish their running jobs."""
    return broadcast("shutdown", {}, destination, reply=reply, timeout=timeout)


def log_level(
    level: str, destination: Destination = None, reply: bool = False, timeout: float = 1.0
) -> Replies | None:
    """Set the level of djqueue's loggers in the workers (``"debug"``, ``"info"``,
    ``"warning"``, ``"error"``, ``"critical"``), as ``runworker --loglevel`` does, until
    they restart. Prefork children keep the level they started with."""
    arguments = {"level": _log_level(level)}
    return broadcast("log_level", arguments, destination, reply=reply, timeout=timeout)


def add_consumer(
    queue: str,
    destination: Destination = None,
    reply: bool = False,
    timeout: float = 1.0,
    **kwargs: Any,
) -> Replies | None:
    """Make the live workers take jobs from ``queue`` too (until they restart)."""
    arguments = {"queue": _queue(queue)}
    return broadcast("add_consumer", arguments, destination, reply=reply, timeout=timeout)


def cancel_consumer(
    queue: str,
    destination: Destination = None,
    reply: bool = False,
    timeout: float = 1.0,
    **kwargs: Any,
) -> Replies | None:
    """Make the live workers stop taking jobs from ``queue`` (until they restart)."""
    arguments = {"queue": _queue(queue)}
    return broadcast("cancel_consumer", arguments, destination, reply=reply, timeout=timeout)


def inspect(
    destination: Destination = None, timeout: float = 1.0, limit: int | None = None
) -> Inspect:
    """Reports on the workers: ``inspect().active()``, ``.stats()``, ..."""
    return Inspect(destination, timeout, limit)


# Inspection -----------------------------------------------------------------------


def jobs(what: str, queue: str | None = None, destination: Destination = None) -> Any:
    """The job rows behind ``inspect()``'s lists, of every worker (also those that
    stopped answering), as a queryset: ``"active"`` (running, oldest first),
    ``"reserved"`` (claimed, not started), ``"scheduled"`` (waiting for their time,
    soonest first) or ``"revoked"`` (newest first); ``destination`` keeps the jobs
    held by those workers (active and reserved)."""
    rows = _jobs()
    if queue is not None:
        rows = rows.filter(queue=queue)
    if what == "active":
        rows = rows.filter(state=states.STARTED).order_by("started_at", "id")
    elif what == "reserved":
        rows = rows.filter(state=states.RECEIVED).order_by("claimed_at", "id")
    elif what == "scheduled":
        return rows.filter(state__in=states.WAITING, eta__gt=_now()).order_by("eta", "id")
    elif what == "revoked":
        return rows.filter(state=states.REVOKED).order_by("-finished_at", "-id")
    else:
        raise ValueError(
            f"cannot list {what!r} jobs; choose active, reserved, scheduled or revoked"
        )
    names = _destination(destination)
    if names is None:
        return rows
    held_by = [name for name in rows.values_list("worker", flat=True).distinct()]
    return rows.filter(worker__in=[name for name in held_by if wire.matches(names, name)])


class Inspect:
    """Reports keyed by worker name, as Celery's ``app.control.inspect()`` gives them;
    None when no live worker (of ``destination``) is there to report."""

    def __init__(
        self, destination: Destination = None, timeout: float = 1.0, limit: int | None = None
    ) -> None:
        self.destination = _destination(destination)
        self.timeout = _positive(timeout, "timeout")
        self.limit = limit

    # Asked of the workers: what only their process knows.

    def ping(self, destination: Destination = None) -> dict[str, Any] | None:
        return self._ask("ping", destination)

    def stats(self) -> dict[str, Any] | None:
        return self._ask("stats")

    def registered(self, *taskinfoitems: str) -> dict[str, Any] | None:
        return self._ask("registered")

    registered_tasks = registered

    # Read from the database: the rows say it, even of a worker too busy to answer.

    def active(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._held("active")

    def reserved(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._held("reserved")

    def scheduled(self, safe: bool | None = None) -> dict[str, Any] | None:
        workers = self._workers()
        if not workers:
            return None
        waiting = jobs("scheduled")
        found: dict[str, Any] = {name: [] for name in workers}
        listed: set[str] = set()
        # Each job once, under the first live worker that serves its queue, as Celery
        # lists an eta task under the one worker holding it (here none holds it yet).
        for name in sorted(workers):
            rows = waiting.filter(queue__in=workers[name]).exclude(queue__in=listed)
            found[name] = [
                {"eta": job.eta.isoformat(), "priority": job.priority, "request": _request(job)}
                for job in rows[:LIST_LIMIT]
            ]
            listed.update(workers[name])
        return found

    def revoked(self) -> dict[str, Any] | None:
        workers = self._workers()
        if not workers:
            return None
        rows = jobs("revoked").values_list("id", flat=True)[:LIST_LIMIT]
        asked = (
            _jobs()
            .filter(state__in=states.HELD, revoke_requested_at__isnull=False)
            .values_list("id", flat=True)[:LIST_LIMIT]
        )
        revoked = [str(job_id) for job_id in [*asked, *rows]]
        return {name: list(revoked) for name in workers}

    def active_queues(self) -> dict[str, Any] | None:
        workers = self._workers()
        if not workers:
            return None
        return {name: [_queue_info(queue) for queue in queues] for name, queues in workers.items()}

    # Helpers

    def _ask(self, command: str, destination: Destination = None) -> dict[str, Any] | None:
        names = self.destination if destination is None else destination
        replies = broadcast(command, {}, names, reply=True, timeout=self.timeout, limit=self.limit)
        found = {name: answer for each in replies or [] for name, answer in each.items()}
        return found or None

    def _workers(self) -> dict[str, list[str]]:
        """The live workers this inspection is for, and their queues."""
        # Imported here: the live workers are read through the models, which Django
        # defines only once its apps are ready, and this module may be imported before.
        from djqueue.db import fleet

        return {
            row.name: [str(queue) for queue in row.queues]
            for row in fleet.live_workers()
            if wire.matches(self.destination, row.name)
        }

    def _held(self, what: str) -> dict[str, Any] | None:
        workers = self._workers()
        if not workers:
            return None
        found: dict[str, Any] = {name: [] for name in workers}
        rows = jobs(what).filter(worker__in=list(workers))
        for job in rows[: LIST_LIMIT * len(workers)]:
            found[job.worker].append(_request(job))
        return found


# What a worker name, a job and a queue look like in replies ------------------------


def _request(job: Any) -> dict[str, Any]:
    """A job as Celery's inspect lists a request."""
    return {
        "id": str(job.id),
        "name": job.task_name,
        "type": job.task_name,
        "args": job.args,
        "kwargs": job.kwargs,
        "hostname": job.worker,
        "time_start": job.started_at.timestamp() if job.started_at is not None else None,
        "acknowledged": job.state == states.STARTED,
        "delivery_info": {
            "exchange": "",
            "routing_key": job.queue,
            "priority": job.priority,
            "redelivered": job.attempt > 1,
        },
        "worker_pid": None,
        "eta": job.eta.isoformat() if job.eta is not None else None,
        "expires": job.expires_at.isoformat() if job.expires_at is not None else None,
        "retries": job.retries,
    }


def _queue_info(queue: str) -> dict[str, Any]:
    return {
        "name": queue,
        "exchange": {"name": queue, "type": "direct"},
        "routing_key": queue,
        "durable": True,
        "exclusive": False,
        "auto_delete": False,
        "no_ack": False,
    }


# Checks and small helpers ---------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """A command's kind: lasting ones are kept for workers that start later, and a
    newer one with the same key (the command and its task) replaces the older."""

    name: str
    lasting: bool = False

    def key(self, arguments: dict[str, Any], destination: list[str] | None = None) -> str:
        """The key of a lasting command: a newer one for the same task and the same
        workers replaces it (one for every worker does not replace one for some)."""
        if not self.lasting:
            return ""
        key = f"{self.name}:{arguments.get('task_name', '')}"
        if destination is not None:
            names = "\n".join(sorted(set(destination))).encode()
            key += "@" + hashlib.sha256(names).hexdigest()[:16]
        return key


COMMANDS: dict[str, _Spec] = {
    spec.name: spec
    for spec in (
        _Spec("ping"),
        _Spec("stats"),
        _Spec("registered"),
        _Spec("shutdown"),
        _Spec("pool_grow"),
        _Spec("pool_shrink"),
        _Spec("log_level"),
        _Spec("add_consumer"),
        _Spec("cancel_consumer"),
        _Spec("rate_limit", lasting=True),
        _Spec("time_limit", lasting=True),
    )
}


def _gather(
    exchange: wire.Exchange,
    control_id: uuid.UUID,
    names: list[str] | None,
    timeout: float,
    limit: int | None,
) -> Replies:
    """Replies until ``timeout``, or until every live worker addressed answered."""
    deadline = time.monotonic() + timeout
    expected = {name for name in exchange.live_workers() if wire.matches(names, name)}
    while True:
        replies = exchange.replies(control_id)
        left = deadline - time.monotonic()
        enough = limit is not None and len(replies) >= limit
        if enough or left <= 0 or (expected and expected <= set(replies)):
            return [{name: answer} for name, answer in replies.items()]
        if not expected:
            return []
        exchange.wait(min(left, REPLY_READ_SECONDS))


def _destination(destination: Destination) -> list[str] | None:
    if destination is None:
        return None
    names = [destination] if isinstance(destination, str) else list(destination)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"destination must be worker names (strings such as 'djqueue@host'), not {name!r}"
            )
    return names


def _positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{what} must be a positive number of seconds, not {value!r}")
    return float(value)


def _count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number of slots of at least 1, not {n!r}")
    return n


def _log_level(level: object) -> str:
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return level.lower()


def _queue(queue: object) -> str:
    from djqueue.db.models import Job

    most = Job._meta.get_field("queue").max_length or 0
    if not isinstance(queue, str) or not 0 < len(queue) <= most:
        raise ValueError(f"queue must be a name of 1 to {most} characters, not {queue!r}")
    return queue


def _jobs() -> Any:
    from djqueue.db.models import Job

    return Job.objects.using(conf.database())


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


__all__ = [
    "Inspect",
    "add_consumer",
    "broadcast",
    "cancel_consumer",
    "inspect",
    "jobs",
    "log_level",
    "ping",
    "pool_grow",
    "pool_shrink",
    "rate_limit",
    "revoke",
    "shutdown",
    "time_limit",
]
