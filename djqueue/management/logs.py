"""Logging for djqueue's long-running commands (runworker, runbeat)."""

from __future__ import annotations

import logging

from django.core.management.base import CommandParser

LEVELS = ("debug", "info", "warning", "error", "critical")


def add_loglevel_argument(parser: CommandParser) -> None:
    """The ``--loglevel``/``-l`` option both commands share."""
    parser.add_argument(
        "--loglevel",
        "-l",
        choices=LEVELS,
        type=str.lower,
        default="info",
        help="Logging level of djqueue's loggers (default: info).",
    )


def configure(level: str, source: str = "%(threadName)s") -> None:
    """Send djqueue's logs to stderr at ``level``, unless the project configured logging.

    ``source`` names where a line comes from (by default the thread).
    """
    logger = logging.getLogger("djqueue")
    logger.setLevel(level.upper())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter(f"[%(asctime)s: %(levelname)s/{source}] %(message)s")
        )
        logger.addHandler(handler)
        logger.propagate = False
