"""The overview's fleet controls: pause or resume every queue at once, grow or shrink
every live worker's pool, shut every live worker down warmly
(docs/monitoring.md#fleet-controls).

Queues change through the broker, which tells the workers; worker commands travel as
:mod:`djqueue.client.control` sends them (a row and a notification), to the workers
alive when they are sent, and the page waits briefly for their replies. The admin view
checks the permission of each (``pause_queue``, ``control_worker``) and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from djqueue.client import control
from djqueue.core import conf
from djqueue.db import broker
from djqueue.db.models import Queue
from djqueue.ops import stats, worker_control

QUEUE_COMMANDS = ("pause_all", "resume_all")
WORKER_COMMANDS = ("pool_grow", "pool_shrink", "shutdown")


@dataclass(frozen=True)
class Result:
    """What came of a fleet command: the words for the page and the log, whether every
    one it was for did it, and the queues or workers it was for."""

    message: str
    ok: bool
    queues: tuple[str, ...] = field(default=())
    workers: tuple[str, ...] = field(default=())


Refused = worker_control.Refused


def queues_running() -> list[str]:
    """Queues that are not paused and that a pause-all would pause: those with jobs
    waiting or held, those a live worker serves, and those with a row of their own."""
    names = {depth.queue for depth in stats.queue_depths()}
    for worker in stats.live_workers():
        names.update(str(name) for name in worker.queues or [])
    names.update(Queue.objects.using(conf.database()).values_list("name", flat=True))
    return sorted(names - stats.paused_queues())


def set_all_paused(paused: bool) -> Result:
    """Pause every queue :func:`queues_running` names, or resume every paused one."""
    names = queues_running() if paused else sorted(stats.paused_queues())
    for name in names:
        broker.set_paused(name, paused)
    verb = "Paused" if paused else "Resumed"
    if not names:
        return Result(f"No queue to {'pause' if paused else 'resume'}.", ok=True)
    return Result(
        f"{verb} {len(names)} queue(s): {', '.join(names)}.", ok=True, queues=tuple(names)
    )


def command_workers(data: Any) -> Result:
    """Send the worker command the POSTed ``data`` asks for to every live worker and
    wait briefly for their replies. Raises :class:`Refused` for what is not accepted."""
    command = data.get("command")
    if command not in WORKER_COMMANDS:
        raise Refused(f"Unknown command {command!r}; choose one of {', '.join(WORKER_COMMANDS)}.")
    live = [worker.name for worker in stats.live_workers()]
    if not live:
        raise Refused("No live worker to send it to.")
    wait = worker_control.REPLY_SECONDS
    if command == "shutdown":
        if data.get("confirm") != "yes":
            raise Refused("Tick the box to confirm the shutdown of every worker.")
        replies = control.shutdown(live, reply=True, timeout=wait)
        asked = "Warm shutdown of every live worker"
    else:
        n = worker_control.slots(data.get("n", "1"))
        send = control.pool_grow if command == "pool_grow" else control.pool_shrink
        replies = send(n, live, reply=True, timeout=wait)
        asked = f"{'Grow' if command == 'pool_grow' else 'Shrink'} every pool by {n}"
    answers = {name: reply for each in replies or [] for name, reply in each.items()}
    said = [_answer(name, answers[name]) for name in live if name in answers]
    silent = [name for name in live if name not in answers]
    message = f"{asked}: {len(said)} of {len(live)} live worker(s) answered"
    message += f": {'; '.join(said)}" if said else ""
    if silent:
        message += f"; no answer within {wait:g} s from {', '.join(silent)}"
    refused = any(isinstance(answers[name], dict) and "error" in answers[name] for name in answers)
    return Result(message + ".", ok=not silent and not refused, workers=tuple(live))


def _answer(name: str, reply: Any) -> str:
    if isinstance(reply, dict) and "error" in reply:
        return f"{name} refused: {reply['error']}"
    if isinstance(reply, dict) and "size" in reply:
        return f"{name} (pool size {reply['size']})"
    return f"{name} {reply.get('ok', 'done') if isinstance(reply, dict) else 'done'}"
