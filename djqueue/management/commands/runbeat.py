"""``manage.py runbeat``: run the periodic task scheduler."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djqueue import beat

LEVELS = ("debug", "info", "warning", "error", "critical")


class Command(BaseCommand):
    help = (
        "Run the djqueue scheduler: send periodic tasks when they are due. Several may "
        "run at once; one leads and the others take over if it stops."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loglevel",
            "-l",
            choices=LEVELS,
            type=str.lower,
            default="info",
            help="Logging level of djqueue's loggers (default: info).",
        )
        parser.add_argument(
            "--max-interval",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Longest time between two looks at the periodic tasks when no change "
            "notification arrives (default: BEAT_MAX_INTERVAL_SECONDS setting).",
        )
        parser.add_argument(
            "--hostname",
            "-n",
            default=None,
            help="Name of this scheduler in logs (default: beat@<host>.<pid>).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["loglevel"])
        max_interval = options["max_interval"]
        if max_interval is not None and max_interval <= 0:
            raise CommandError(f"--max-interval must be positive, not {max_interval:g}")
        name = f"{options['hostname'] or f'beat@{socket.gethostname()}'}.{os.getpid()}"
        stop = threading.Event()
        _stop_on_signals(stop)
        beat.Beat(name, max_interval, stop).run()


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("djqueue")
    logger.setLevel(level.upper())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/beat] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
