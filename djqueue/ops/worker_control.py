"""Steering one worker from its admin page: grow or shrink its pool, set its log level,
stop it warmly (docs/monitoring.md#controlling-a-worker).

Each command travels as :mod:`djqueue.client.control` sends it (a row of the control
table and a notification), so it reaches the worker on whatever host it runs. Each needs
``djqueue.control_worker``, is a CSRF-protected POST, and leaves a LogEntry saying what
was asked and what the worker answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from djqueue.client import control
from djqueue.db.models import Worker

# Seconds the page waits for the worker's reply (a busy worker answers within a
# heartbeat; the command stays valid for it a minute).
REPLY_SECONDS = 3.0
# Most slots one click adds or removes.
MOST_SLOTS = 64
COMMANDS = ("pool_grow", "pool_shrink", "log_level", "shutdown")


@dataclass(frozen=True)
class Result:
    """What came of a command: the words for the page and its log, and whether the
    worker said it was done."""

    message: str
    ok: bool


class Refused(ValueError):
    """A command the form asked for that cannot be sent; the message says why."""


def send(worker: Worker, data: Any) -> Result:
    """Send the command the POSTed ``data`` asks for to ``worker`` and wait briefly for
    its reply. Raises :class:`Refused` for a command or value that is not accepted."""
    command = data.get("command")
    if command not in COMMANDS:
        raise Refused(f"Unknown command {command!r}; choose one of {', '.join(COMMANDS)}.")
    destination = [worker.name]
    if command in ("pool_grow", "pool_shrink"):
        n = slots(data.get("n", "1"))
        send_pool = control.pool_grow if command == "pool_grow" else control.pool_shrink
        replies = send_pool(n, destination, reply=True, timeout=REPLY_SECONDS)
        asked = f"{'Grow' if command == 'pool_grow' else 'Shrink'} the pool by {n}"
    elif command == "log_level":
        level = str(data.get("level", ""))
        if level not in control.LOG_LEVELS:
            raise Refused(f"Choose a log level: {', '.join(control.LOG_LEVELS)}.")
        replies = control.log_level(level, destination, reply=True, timeout=REPLY_SECONDS)
        asked = f"Set the log level to {level}"
    else:
        if data.get("confirm") != "yes":
            raise Refused("Tick the box to confirm the shutdown.")
        replies = control.shutdown(destination, reply=True, timeout=REPLY_SECONDS)
        asked = "Warm shutdown"
    return _result(asked, worker.name, replies or [])


def slots(value: object) -> int:
    """The number of slots a form asked for; :class:`Refused` outside 1 to MOST_SLOTS."""
    try:
        n = int(str(value))
    except ValueError:
        n = 0
    if not 1 <= n <= MOST_SLOTS:
        raise Refused(f"Give a number of slots from 1 to {MOST_SLOTS}, not {value!r}.")
    return n


def _result(asked: str, name: str, replies: list[dict[str, Any]]) -> Result:
    answer = next((reply[name] for reply in replies if name in reply), None)
    if answer is None:
        return Result(
            f"{asked}: sent; {name} did not answer within {REPLY_SECONDS:g} s (it acts on "
            "the command at its next heartbeat if it is alive, for a minute).",
            ok=False,
        )
    if isinstance(answer, dict) and "error" in answer:
        return Result(f"{asked}: {name} refused: {answer['error']}.", ok=False)
    said = answer.get("ok", "done") if isinstance(answer, dict) else "done"
    size = f" (pool size {answer['size']})" if isinstance(answer, dict) and "size" in answer else ""
    return Result(f"{asked}: {name} answered {said!r}{size}.", ok=True)
