"""What is due now: a task's next slot from its previous one, and what to do about the
slots missed while no scheduler ran (the catch-up policies)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from djqueue.core.schedules.base import Schedule

# How missed slots are handled when the scheduler was not running.
CATCH_UP_ONCE = "once"  # run once for the whole missed period (the latest missed slot)
CATCH_UP_ALL = "all"  # run every missed slot, one after the other
CATCH_UP_SKIP = "skip"  # run none of them; wait for the next slot
CATCH_UP_POLICIES = (CATCH_UP_ONCE, CATCH_UP_ALL, CATCH_UP_SKIP)


@dataclass(frozen=True)
class Decision:
    """What to do now: ``slot`` becomes the task's last slot; enqueue it if ``run``."""

    slot: datetime.datetime
    run: bool


def due(
    schedule: Schedule,
    last_slot: datetime.datetime,
    now: datetime.datetime,
    catch_up: str = CATCH_UP_ONCE,
    grace: float = 60.0,
) -> Decision | None:
    """What is due at ``now``, given the last slot that ran (or the start); None: nothing.

    ``last_slot`` is the previous slot, not the previous wake-up: the answer depends only
    on the schedule, the slots and ``now``, so asking twice for the same ``last_slot``
    gives the same slot (which the database then refuses to enqueue twice). A slot is
    missed when it is more than ``grace`` seconds old.
    """
    if catch_up not in CATCH_UP_POLICIES:
        raise ValueError(f"unknown catch-up policy {catch_up!r}; use one of {CATCH_UP_POLICIES}")
    upcoming = schedule.next_after(last_slot)
    if upcoming is None or upcoming > now:
        return None
    if catch_up == CATCH_UP_ALL:
        return Decision(upcoming, run=True)
    # Never before ``upcoming``: in a skipped DST hour, cron runs the missing time just
    # after the jump, which a backward search from ``now`` does not find.
    latest = max(upcoming, schedule.last_at_or_before(now) or upcoming)
    if catch_up == CATCH_UP_ONCE:
        return Decision(latest, run=True)
    # Skip: only a slot that is due now runs; older ones are passed over.
    return Decision(latest, run=(now - latest).total_seconds() <= grace)
