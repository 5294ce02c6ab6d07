"""``manage.py runworker``: run a worker process."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from djqueue.beat import scheduler as beat
from djqueue.client.validators import check_time_limits
from djqueue.core import conf
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import schema, sessions
from djqueue.management import logs
from djqueue.runtime import gevent_patch, gevent_reexec, pools, worker


class Command(BaseCommand):
    help = "Run a djqueue worker: claim jobs from the queues and run them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pool",
            "-P",
            choices=sorted(pools.POOLS),
            default=pools.DEFAULT,
            help=f"Where jobs run (default: {pools.DEFAULT}).",
        )
        parser.add_argument(
            "--concurrency",
            "-c",
            type=int,
            default=None,
            help="Jobs run at once (default: the CONCURRENCY setting, else the number of CPUs).",
        )
        parser.add_argument(
            "--queues",
            "-Q",
            default=None,
            help="Comma-separated queues to take jobs from (default: DEFAULT_QUEUE).",
        )
        logs.add_loglevel_argument(parser)
        parser.add_argument(
            "--hostname",
            "-n",
            default=None,
            help="Name of this worker (default: djqueue@<host>); the pid and a short "
            "random suffix are appended so that every process is told apart.",
        )
        parser.add_argument(
            "--prefetch-multiplier",
            type=int,
            default=None,
            help="Jobs held per slot (default: PREFETCH_MULTIPLIER setting).",
        )
        parser.add_argument(
            "--max-tasks-per-child",
            type=int,
            default=None,
            help="prefork: replace a child process after it has run this many jobs.",
        )
        parser.add_argument(
            "--max-memory-per-child",
            type=int,
            default=None,
            metavar="KB",
            help="prefork: replace a child process after a job leaves it using more than "
            "this much resident memory, in kilobytes.",
        )
        parser.add_argument(
            "--autoscale",
            default=None,
            metavar="MAX,MIN",
            help="prefork and threads: grow the pool toward MAX while jobs wait, shrink it "
            "toward MIN when idle (replaces --concurrency).",
        )
        parser.add_argument(
            "--autoscale-keepalive",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="With --autoscale: seconds of low demand before the pool shrinks (default: 30).",
        )
        parser.add_argument(
            "--time-limit",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Hard time limit for tasks that set none (default: TIME_LIMIT setting): the "
            "job is stopped and ends FAILURE with TimeLimitExceeded (prefork kills the child).",
        )
        parser.add_argument(
            "--soft-time-limit",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Soft time limit for tasks that set none (default: SOFT_TIME_LIMIT setting): "
            "SoftTimeLimitExceeded is raised inside the task so that it can clean up.",
        )
        parser.add_argument(
            "--beat",
            "-B",
            action="store_true",
            help="Also run the periodic task scheduler (as runbeat does) in a thread of "
            "this worker; for small deployments.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logs.configure(options["loglevel"])
        queues = _queues(options["queues"] or conf.string("DEFAULT_QUEUE"))
        concurrency = options["concurrency"]
        if concurrency is None:
            concurrency = conf.optional_integer("CONCURRENCY") or os.cpu_count() or 1
        if concurrency < 1:
            raise CommandError(f"--concurrency must be at least 1, not {concurrency}")
        prefetch = options["prefetch_multiplier"]
        if prefetch is not None and prefetch < 1:
            raise CommandError(f"--prefetch-multiplier must be at least 1, not {prefetch}")
        pool = options["pool"]
        if pool == "gevent":
            _start_over_patched()
        try:
            hard, soft = check_time_limits(
                _flag_or_setting(options, "time_limit"),
                _flag_or_setting(options, "soft_time_limit"),
                "the worker",
                names=("--time-limit", "--soft-time-limit"),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # Before the worker connects: a dead network link must end in a reconnect.
        sessions.protect_django_connections()
        try:
            run = worker.Worker(
                worker.Options(
                    queues=queues,
                    pool=pool,
                    concurrency=concurrency,
                    hostname=options["hostname"] or f"djqueue@{socket.gethostname()}",
                    prefetch_multiplier=prefetch,
                    max_tasks_per_child=_child_limit(options, "max_tasks_per_child", pool),
                    max_memory_per_child=_child_limit(options, "max_memory_per_child", pool),
                    autoscale=_autoscale(options["autoscale"], pool),
                    autoscale_keepalive=_keepalive(options["autoscale_keepalive"]),
                    time_limit=hard,
                    soft_time_limit=soft,
                )
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            # Tables that are missing now will not appear by waiting: say so and exit.
            schema.require()
            if options["beat"]:
                beat.start_thread(f"{run.name}-beat")
            code = run.run()
        except MigrationsMissing as exc:
            raise CommandError(str(exc)) from None
        if code:
            raise SystemExit(code)


def _start_over_patched() -> None:
    """``--pool gevent`` from a ``manage.py`` that did not patch: start again, patched.

    Replaces this process (same pid) by :mod:`djqueue.runtime.gevent_reexec`, which patches and
    runs the same command line. Returns when there is nothing to do or it cannot be
    done (called from code, not a command line); the pool then explains what to do.
    """
    if os.environ.get(gevent_reexec.MARKER) or not gevent_patch.requested(sys.argv):
        return
    try:
        from djqueue.runtime.pools import gevent  # imports gevent, which may be missing
    except ImportError:
        return  # the pool says to install it
    try:
        gevent.require_patching()
    except gevent.NotPatchedError:
        pass
    else:
        return  # patched early enough already
    argv = gevent_reexec.command(sys.orig_argv, sys.argv, sys.executable)
    if argv is None:
        return
    logging.getLogger("djqueue.worker").info(
        "--pool gevent: starting again with gevent's monkey-patching applied first"
    )
    connections.close_all()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.environ[gevent_reexec.MARKER] = "1"
    os.execv(argv[0], argv)  # noqa: S606 - this interpreter, with its own arguments


def _flag_or_setting(options: dict[str, Any], key: str) -> Any:
    """The flag's value, or the setting of the same name (TIME_LIMIT for --time-limit)."""
    value = options[key]
    return conf.optional_number(key.upper()) if value is None else value


def _child_limit(options: dict[str, Any], key: str, pool: str) -> int | None:
    value: int | None = options[key]
    flag = "--" + key.replace("_", "-")
    if value is None:
        # The setting applies to the pool that has children; others have none to limit.
        return conf.optional_integer(key.upper()) if pool == "prefork" else None
    if value < 1:
        raise CommandError(f"{flag} must be at least 1, not {value}")
    if pool != "prefork":
        raise CommandError(f"{flag} applies to --pool prefork only, not {pool}")
    return value


def _autoscale(text: str | None, pool: str) -> tuple[int, int] | None:
    """``MAX,MIN`` (or just ``MAX``, with MIN 1) as ``(MAX, MIN)``."""
    if text is None:
        return None
    if pool not in ("prefork", "threads"):
        raise CommandError(f"--autoscale applies to the prefork and threads pools, not {pool}")
    parts = [part.strip() for part in text.split(",")]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2):
        raise CommandError(f"--autoscale takes MAX,MIN (two whole numbers), not {text!r}")
    high, low = numbers[0], numbers[1] if len(numbers) == 2 else 1
    if not 1 <= low <= high:
        raise CommandError(f"--autoscale needs 1 <= MIN <= MAX, not MAX={high} MIN={low}")
    return high, low


def _keepalive(seconds: float) -> float:
    if seconds < 0:
        raise CommandError(f"--autoscale-keepalive cannot be negative, not {seconds:g}")
    return seconds


def _queues(text: str) -> list[str]:
    queues = [name.strip() for name in text.split(",") if name.strip()]
    if not queues:
        raise CommandError("--queues needs at least one queue name")
    return queues
