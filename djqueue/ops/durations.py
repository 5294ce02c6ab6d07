"""Moments and lengths of time as the console writes them: short words a person reads
at a glance."""

from __future__ import annotations

import datetime

from django.utils import timezone


def moment(at: datetime.datetime) -> str:
    """``at`` to the second in the current time zone, with the zone's name
    (``2026-12-01 16:04:05 CET``); a naive moment (``USE_TZ = False``) as it is."""
    local = timezone.localtime(at) if timezone.is_aware(at) else at
    return local.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


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


def ago(seconds: float) -> str:
    """``seconds`` before now as "12 s ago", "5 min ago", "3 h ago", "2 d ago"; a
    negative number as "in ..."."""
    shown = duration(abs(seconds), whole=True)
    return f"in {shown}" if seconds < 0 else f"{shown} ago"


def duration(seconds: float, whole: bool = False) -> str:
    """``seconds`` in the largest units that read well: 340 ms, 12.3 s, 5 min 3 s,
    2 h 5 min, 3 d 4 h (``whole``: no fractions below a minute)."""
    if seconds < 1 and not whole:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if whole or seconds >= 10 else f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds and not whole else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
