"""``manage.py runworker``: run a worker process."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djqueue import conf, pools, worker

LEVELS = ("debug", "info", "warning", "error", "critical")


class Command(BaseCommand):
    help = "Run a djqueue worker: claim jobs from the queues and run them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pool",
            "-P",
            choices=sorted(pools.POOLS),
            default="threads",
            help="Where jobs run (default: threads).",
        )
        parser.add_argument(
            "--concurrency",
            "-c",
            type=int,
            default=None,
            help="Jobs run at once (default: number of CPUs; 1 for solo).",
        )
        parser.add_argument(
            "--queues",
            "-Q",
            default=None,
            help="Comma-separated queues to take jobs from (default: DEFAULT_QUEUE).",
        )
        parser.add_argument(
            "--loglevel",
            "-l",
            choices=LEVELS,
            type=str.lower,
            default="info",
            help="Logging level of djqueue's loggers (default: info).",
        )
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

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["loglevel"])
        queues = _queues(options["queues"] or conf.get("DEFAULT_QUEUE"))
        concurrency = options["concurrency"]
        if concurrency is None:
            concurrency = os.cpu_count() or 1
        if concurrency < 1:
            raise CommandError(f"--concurrency must be at least 1, not {concurrency}")
        prefetch = options["prefetch_multiplier"]
        if prefetch is not None and prefetch < 1:
            raise CommandError(f"--prefetch-multiplier must be at least 1, not {prefetch}")
        run = worker.Worker(
            worker.Options(
                queues=queues,
                pool=options["pool"],
                concurrency=concurrency,
                hostname=options["hostname"] or f"djqueue@{socket.gethostname()}",
                prefetch_multiplier=prefetch,
            )
        )
        code = run.run()
        if code:
            raise SystemExit(code)


def _queues(text: str) -> list[str]:
    queues = [name.strip() for name in text.split(",") if name.strip()]
    if not queues:
        raise CommandError("--queues needs at least one queue name")
    return queues


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("djqueue")
    logger.setLevel(level.upper())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("[%(asctime)s: %(levelname)s/%(threadName)s] %(message)s")
        )
        logger.addHandler(handler)
        logger.propagate = False
