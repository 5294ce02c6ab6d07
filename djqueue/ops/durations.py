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
