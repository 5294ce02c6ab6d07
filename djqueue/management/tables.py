"""Plain aligned tables for ``manage.py djqueue``: every cell escaped for a terminal.

Cells come from job and worker rows (task names, queues, error messages): data, not
ours, which may carry escape sequences. Each cell goes through ``text.printable``
before its width is measured, so an escape sequence is shown, never run, and the
columns stay aligned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from djqueue.core import text

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
