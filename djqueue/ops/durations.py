"""Lengths of time as the console writes them: short words a person reads at a glance."""

from __future__ import annotations

import datetime


def words(span: datetime.timedelta) -> str:
    """``span`` as 4 s, 3 min 20 s, 2 h 5 min or 3 d 4 h (never negative)."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"
