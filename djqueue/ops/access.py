"""Who may see and do what in the console: the permission checks, and what a user's
permissions let a page show (docs/monitoring.md#access).

Every console page and action checks one of the permissions named here; the dashboard
shows a part only to a user who may open the pages that part summarises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The permissions themselves are data in the core; the console checks them by these names.
from djqueue.core.permissions import (
    ADMIN,
    APP,
    CONTROL_WORKERS,
    DELETE_JOBS,
    LIMIT_QUEUES,
    OPERATOR,
    PAUSE,
    RETRY,
    REVOKE,
    ROLES,
    RUN_PERIODIC,
    TERMINATE,
    VIEW_JOBS,
    VIEW_METRICS,
    VIEW_PERIODIC,
    VIEW_QUEUES,
    VIEW_WORKERS,
)

__all__ = [
    "ADMIN",
    "APP",
    "CONTROL_WORKERS",
    "DELETE_JOBS",
    "LIMIT_QUEUES",
    "OPERATOR",
    "PAUSE",
    "RETRY",
    "REVOKE",
    "ROLES",
    "RUN_PERIODIC",
    "TERMINATE",
    "VIEW_JOBS",
    "VIEW_METRICS",
    "VIEW_PERIODIC",
    "VIEW_QUEUES",
    "VIEW_WORKERS",
    "Visible",
    "may",
]


def may(user: Any, codename: str) -> bool:
    """Whether ``user`` holds djqueue's permission ``codename``."""
    return bool(user.has_perm(f"{APP}.{codename}"))


@dataclass(frozen=True)
class Visible:
    """The parts of the console a user may see, each the page it links to."""

    jobs: bool
    workers: bool
    queues: bool
    periodic: bool

    @classmethod
    def to(cls, user: Any) -> Visible:
        return cls(
            jobs=may(user, VIEW_JOBS),
            workers=may(user, VIEW_WORKERS),
            queues=may(user, VIEW_QUEUES),
            periodic=may(user, VIEW_PERIODIC),
        )
