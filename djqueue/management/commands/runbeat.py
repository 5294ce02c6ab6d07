"""``manage.py runbeat``: run the periodic task scheduler."""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djqueue.beat import scheduler as beat
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import schema, sessions
from djqueue.management import logs


class Command(BaseCommand):
    help = (
        "Run the djqueue scheduler: send periodic tasks when they are due. Several may "
        "run at once; one leads and the others take over if it stops."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        logs.add_loglevel_argument(parser)
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
        logs.configure(options["loglevel"], source="beat")
        max_interval = options["max_interval"]
        if max_interval is not None and max_interval <= 0:
            raise CommandError(f"--max-interval must be positive, not {max_interval:g}")
        name = f"{options['hostname'] or f'beat@{socket.gethostname()}'}.{os.getpid()}"
        # Before the scheduler connects: a dead network link must end in a reconnect.
        sessions.protect_django_connections()
        stop = threading.Event()
        _stop_on_signals(stop)
        try:
            # Tables that are missing now will not appear by waiting: say so and exit.
            schema.require()
            beat.Beat(name, max_interval, stop).run()
        except MigrationsMissing as exc:
            raise CommandError(str(exc)) from None


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
