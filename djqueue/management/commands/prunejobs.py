"""``manage.py prunejobs``: delete finished jobs older than the retention period."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djqueue.core import conf
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import broker


class Command(BaseCommand):
    help = "Delete finished jobs (and stopped workers) older than the retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="Seconds since finishing (default: RESULT_RETENTION_SECONDS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        if older_than is None:
            older_than = conf.optional_number("RESULT_RETENTION_SECONDS")
        if older_than is None:
            raise CommandError(
                "RESULT_RETENTION_SECONDS is None (keep forever); pass --older-than SECONDS"
            )
        if older_than < 0:
            raise CommandError("--older-than must not be negative")
        on_terminal = self.stderr.isatty()
        progress = self._progress if on_terminal else None
        try:
            count = broker.prune(float(older_than), progress=progress)
        except MigrationsMissing as exc:
            raise CommandError(str(exc)) from None
        if on_terminal:
            self.stderr.write("")
        self.stdout.write(f"Pruned {count} finished job(s) older than {older_than:g}s.")

    def _progress(self, total: int) -> None:
        # One growing line on a terminal: the count of jobs deleted so far.
        self.stderr.write(f"\rdeleting... {total} job(s)", ending="")
        self.stderr.flush()
