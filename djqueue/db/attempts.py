"""Reads for a job's attempt timeline: where the workers that ran it live."""

from __future__ import annotations

from collections.abc import Iterable

from djqueue.core import conf
from djqueue.db.models import Worker


def hosts(worker_names: Iterable[str]) -> dict[str, str]:
    """The host of each named worker whose row is still kept (rows of long-gone workers
    are pruned with finished jobs)."""
    names = sorted({name for name in worker_names if name})
    if not names:
        return {}
    rows = Worker.objects.using(conf.database()).filter(name__in=names)
    return dict(rows.values_list("name", "hostname"))
