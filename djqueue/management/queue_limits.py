"""``manage.py djqueue queue-limit``: read or set a queue's own limits over all workers
(docs/limits.md#queue-limits), as the queues page's Limits form does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from djqueue.core import conf, limits
from djqueue.db import broker
from djqueue.db.models import Queue
from djqueue.management.tables import cell
from djqueue.ops import queue_page

# What clears a limit on the command line.
NONE = "none"


def add_parser(commands: Any) -> None:
    """Declare ``queue-limit QUEUE [--concurrency N] [--rate RATE]``."""
    parser: CommandParser = commands.add_parser(
        "queue-limit",
        help="show or set a queue's own concurrency and rate limits, over all workers",
    )
    parser.add_argument("queue", metavar="QUEUE")
    parser.add_argument(
        "--concurrency",
        "-c",
        default=None,
        metavar="N",
        help=f"at most N of its jobs held by workers at once ('{NONE}': no limit)",
    )
    parser.add_argument(
        "--rate",
        "-r",
        default=None,
        metavar="RATE",
        help=f"at most RATE of its jobs started: 10/s, 100/m, 1000/h ('{NONE}': no limit)",
    )


def run(queue: str, concurrency: str | None, rate: str | None) -> str:
    """Set the limits given (keeping the others as they are) and say what they are now."""
    most = Queue._meta.get_field("name").max_length or 0
    if not 0 < len(queue) <= most:
        raise CommandError(f"A queue name has 1 to {most} characters.")
    row = _row(queue)
    if concurrency is not None or rate is not None:
        now_concurrency = row.concurrency_limit if row else None
        now_rate = (
            (row.rate_limit, row.rate_period)
            if row and row.rate_limit and row.rate_period
            else None
        )
        broker.set_queue_limits(
            queue,
            now_concurrency if concurrency is None else _concurrency(concurrency),
            now_rate if rate is None else _rate(rate),
        )
        row = _row(queue)
    return f"{cell(queue)}: {_described(row)}"


def limited() -> dict[str, str]:
    """Every queue with limits of its own, with its limits in words ("2 at once, 100/m")."""
    rows = Queue.objects.using(conf.database()).exclude(
        concurrency_limit__isnull=True, rate_limit__isnull=True
    )
    return {row.name: _described(row) for row in rows}


def _row(queue: str) -> Queue | None:
    return Queue.objects.using(conf.database()).filter(name=queue).first()


def _concurrency(value: str) -> int | None:
    if value.strip().lower() == NONE:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise CommandError(
            f"--concurrency is a whole number of 1 or more, or '{NONE}'; not {value!r}"
        )
    return n


def _rate(value: str) -> tuple[int, float] | None:
    if value.strip().lower() == NONE:
        return None
    try:
        parsed = limits.parse_rate(value.strip())
    except ValueError as exc:
        raise CommandError(f"--rate: {exc}") from None
    return (parsed.count, parsed.period)


def _described(row: Queue | None) -> str:
    """As the queues page says it: "2 at once, 100/m", or "no limits"."""
    if row is None:
        return "no limits"
    parts = [f"{row.concurrency_limit} at once"] if row.concurrency_limit else []
    rate = queue_page.rate_text(row)
    return ", ".join([*parts, rate] if rate else parts) or "no limits"
