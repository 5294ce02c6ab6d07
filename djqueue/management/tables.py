"""Plain aligned tables for ``manage.py djqueue``: every cell escaped for a terminal;
the columns of its job lists and how its replies and times read.

Cells come from job and worker rows (task names, queues, error messages): data, not
ours, which may carry escape sequences. Each cell goes through ``text.printable``
before its width is measured, so an escape sequence is shown, never run, and the
columns stay aligned.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils import timezone

from djqueue.core import text
from djqueue.db.models import Job

# Widest a cell is shown; longer ones are cut (and say so).
CELL_LIMIT = 120


def cell(value: object) -> str:
    """``value`` as one line of text for a table: escaped, and cut when very long."""
    shown = "-" if value is None or value == "" else str(value)
    return text.shortened(text.printable(shown), CELL_LIMIT)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a table: a header, then one line per row, columns two spaces apart."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))
    lines = [_line(headers, widths)]
    lines.extend(_line(row, widths) for row in cells)
    return lines


def pairs(rows: Iterable[tuple[str, object]]) -> list[str]:
    """``name  value`` lines, the values aligned (one record, such as a job)."""
    items = [(name, cell(value)) for name, value in rows]
    width = max((len(name) for name, _ in items), default=0)
    return [f"{name.ljust(width)}  {value}".rstrip() for name, value in items]


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    padded = (value.ljust(width) for value, width in zip(values, widths, strict=True))
    return "  ".join(padded).rstrip()


def job_table(what: str, jobs: list[Job]) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    """The columns of a job list (inspect active, reserved, scheduled, revoked)."""
    if what == "active":
        return ("ID", "TASK", "QUEUE", "WORKER", "RUNNING FOR"), [
            (
                job.id,
                job.task_name,
                job.queue,
                job.worker,
                ago(job.started_at) if job.started_at else "?",
            )
            for job in jobs
        ]
    if what == "reserved":
        return ("ID", "TASK", "QUEUE", "HELD BY"), [
            (job.id, job.task_name, job.queue, job.worker) for job in jobs
        ]
    if what == "revoked":
        return ("ID", "TASK", "QUEUE", "WHY"), [
            (job.id, job.task_name, job.queue, job.error_message) for job in jobs
        ]
    return ("ID", "TASK", "QUEUE", "ETA"), [
        (job.id, job.task_name, job.queue, job.eta.isoformat(timespec="seconds")) for job in jobs
    ]


def flat(reply: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A nested reply (stats) as ``(dotted.key, value)`` rows."""
    rows: list[tuple[str, str]] = []
    for key, value in sorted(reply.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(flat(value, f"{name}."))
        else:
            rows.append((name, compact(value)))
    return rows


def compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def ago(moment: datetime.datetime) -> str:
    return f"{(timezone.now() - moment).total_seconds():.1f}s"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"
