"""The oldest snapshot held in the queue's database: while a transaction keeps one,
vacuum may remove no row version that died after it began, so the claim index fills
with the entries of claimed jobs and every claim reads through them
(docs/scaling.md#size)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections

from djqueue.core import conf

# Sessions of this database, other than the asking one, that hold vacuum back (with a
# snapshot, or with a transaction that wrote and is still open), the longest-running
# first. Another role's sessions are seen only by a superuser or a
# member of pg_read_all_stats (for others their columns are NULL, and they are skipped).
OLDEST = """
SELECT extract(epoch FROM now() - xact_start), pid, application_name, state
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) AND xact_start IS NOT NULL
      AND xact_start < now() - make_interval(secs => %s)
ORDER BY xact_start
LIMIT 1
"""


@dataclass(frozen=True)
class Holder:
    """A session holding back vacuum: for how long, and what it is."""

    seconds: float
    pid: int
    application: str
    state: str


def oldest(longer_than: float) -> Holder | None:
    """The session of the queue's database whose transaction has held a snapshot the
    longest, if longer than ``longer_than`` seconds."""
    with connections[conf.database()].cursor() as cursor:
        cursor.execute(OLDEST, [longer_than])
        row = cursor.fetchone()
    if row is None:
        return None
    return Holder(float(row[0]), int(row[1]), str(row[2] or ""), str(row[3] or ""))
