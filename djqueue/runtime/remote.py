"""A worker's side of ``djqueue.control``: read commands, check them, act, reply.

Runs in the worker's control thread, woken by the listener when a command is announced
and once per heartbeat in any case (a missed notification costs a heartbeat's delay,
not the command). A command row is data from a table: its name and arguments are
checked here before anything is done, and a bad one gets an error reply and a log line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from djqueue.client import control
from djqueue.core import limits, registry, text
from djqueue.core.exceptions import NotRegistered
from djqueue.db import control as wire

if TYPE_CHECKING:
    from djqueue.runtime.worker import Worker

logger = logging.getLogger("djqueue.worker")

Reply = dict[str, Any] | list[Any]


class BadCommand(ValueError):
    """A command row this worker cannot act on; the message says why."""


class Remote:
    """Serves the commands meant for one worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.started = time.time()
        # Commands acted on, so that none is acted on twice (a lasting command stays in
        # the table); forgotten once they leave it.
        self.done: set[uuid.UUID] = set()
        self.wanted = threading.Event()
        self.handlers: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "ping": self.ping,
            "stats": self.stats,
            "registered": self.registered,
            "shutdown": self.shutdown,
            "pool_grow": lambda args: self.resize(args, +1),
            "pool_shrink": lambda args: self.resize(args, -1),
            "log_level": self.log_level,
            "add_consumer": lambda args: self.consume(args, True),
            "cancel_consumer": lambda args: self.consume(args, False),
            "rate_limit": self.rate_limit,
            "time_limit": self.time_limit,
        }

    def notified(self) -> None:
        """A command was announced (the listener thread calls this)."""
        self.wanted.set()

    def serve(self, always: bool = False) -> None:
        """Act on the commands not acted on yet, if any were announced (or ``always``)."""
        if not (always or self.wanted.is_set()):
            return
        self.wanted.clear()
        commands = self.worker.store.control_pending(self.worker.name)
        self.done &= {command.id for command in commands}
        for command in commands:
            if command.id in self.done:
                continue
            self.done.add(command.id)
            if wire.matches(command.destination, self.worker.name):
                self._act(command)

    def _act(self, command: wire.Command) -> None:
        try:
            reply = self._reply(command)
        except BadCommand as exc:
            logger.warning("Ignored control command %s: %s.", command.id, text.printable(str(exc)))
            reply = {"error": str(exc)}
        self.worker.store.control_answer(command.id, self.worker.name, reply)
        if command.command == "shutdown":
            # After the reply is written: the sender may be waiting for it.
            self.worker.stop()

    def _reply(self, command: wire.Command) -> Reply:
        handler = self.handlers.get(command.command)
        if handler is None:
            raise BadCommand(f"unknown command {text.shortened(command.command, 60)!r}")
        if not isinstance(command.arguments, dict):
            raise BadCommand("its arguments are not a JSON object")
        logger.info("Control command %s (%s).", command.command, command.id)
        return handler(command.arguments)

    # Commands ---------------------------------------------------------------------

    def ping(self, arguments: dict[str, Any]) -> Reply:
        return {"ok": "pong"}

    def registered(self, arguments: dict[str, Any]) -> Reply:
        return sorted(registry.names())

    def stats(self, arguments: dict[str, Any]) -> Reply:
        worker = self.worker
        pool = worker.pool
        pids = getattr(pool, "pids", None)
        load = getattr(pool, "load", None)
        return {
            "pid": os.getpid(),
            "hostname": worker.options.hostname,
            "uptime": round(time.time() - self.started, 3),
            "pool": {
                "implementation": pool.name,
                "max-concurrency": load().size if load is not None else pool.concurrency,
                "processes": pids() if pids is not None else [os.getpid()],
                "max-tasks-per-child": worker.options.max_tasks_per_child,
                "max-memory-per-child": worker.options.max_memory_per_child,
            },
            "prefetch_count": worker.capacity,
            "total": dict(worker.totals),
            "jobs_done": worker.jobs_done,
            "queues": list(worker.queues),
            "broker": {"transport": "postgresql"},
        }

    def shutdown(self, arguments: dict[str, Any]) -> Reply:
        logger.warning("Shutdown asked by a control command: warm shutdown.")
        return {"ok": "shutting down"}

    def resize(self, arguments: dict[str, Any], sign: int) -> Reply:
        n = arguments.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10_000:
            raise BadCommand(f"n must be a whole number from 1 to 10000, not {n!r}")
        size = self.worker.resize_pool(sign * n)
        if size is None:
            raise BadCommand(f"the {self.worker.pool.name} pool cannot change its size")
        return {"ok": f"pool will {'grow' if sign > 0 else 'shrink'}", "size": size}

    def log_level(self, arguments: dict[str, Any]) -> Reply:
        level = arguments.get("level")
        if not isinstance(level, str) or level not in control.LOG_LEVELS:
            raise BadCommand(f"level must be one of {', '.join(control.LOG_LEVELS)}")
        logging.getLogger("djqueue").setLevel(level.upper())
        # Said at WARNING: the change is seen whatever the new level.
        logger.warning("Log level set to %s by a control command.", level)
        return {"ok": f"log level set to {level}", "level": level}

    def consume(self, arguments: dict[str, Any], add: bool) -> Reply:
        queue = _text(arguments, "queue", 100)
        changed = self.worker.consume(queue, add)
        verb = "add consumer" if add else "no longer consuming from"
        if not changed:
            return {"ok": f"already {'consuming from' if add else 'not consuming from'} {queue}"}
        return {"ok": f"{verb} {queue}"}

    def rate_limit(self, arguments: dict[str, Any]) -> Reply:
        task = self._task(arguments)
        value = arguments.get("rate_limit")
        if value in (None, "0", 0):
            rate = None
        else:
            try:
                rate = limits.parse_rate(value)
            except ValueError as exc:
                raise BadCommand(str(exc)) from None
        task.rate_limit = None if rate is None else str(value)
        task.rate = rate
        self.worker.rate_overrides[task.name] = rate
        registry.register(task)  # again: whether it is limited may have changed
        return {"ok": "new rate limit set successfully"}

    def time_limit(self, arguments: dict[str, Any]) -> Reply:
        task = self._task(arguments)
        soft, hard = _seconds(arguments, "soft"), _seconds(arguments, "hard")
        self.worker.supervisor.override(task.name, soft, hard)
        self.worker.timed()
        return {"ok": "time limits set successfully"}

    def _task(self, arguments: dict[str, Any]) -> Any:
        name = _text(arguments, "task_name", 255)
        try:
            return registry.get(name)
        except NotRegistered:
            raise BadCommand(f"unknown task {name!r}") from None


def _text(arguments: dict[str, Any], key: str, most: int) -> str:
    value = arguments.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= most:
        raise BadCommand(f"{key} must be a string of 1 to {most} characters")
    return value


def _seconds(arguments: dict[str, Any], key: str) -> float | None:
    value = arguments.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise BadCommand(f"{key} must be a positive number of seconds or null")
    return float(value)
