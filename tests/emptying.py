"""How the suite empties the test database after a test that commits.

A test marked ``django_db(transaction=True)`` runs on committed rows, and Django empties
every table after it (the ``flush`` command), then sends ``post_migrate`` to put back the
content types and permissions. On PostgreSQL Django empties them with one ``TRUNCATE``,
which gives every table and index new files: measured at 0.3 to 0.8 s
(with ``post_migrate``, up to 1 s) per test on a loaded two-core machine, against 0.02 s
for ``DELETE`` on the few rows a test leaves. The suite has some 400 such tests, so
:func:`deleting_flush` replaces Django's statements in the test process (worker
processes never flush):

- ``DELETE`` from each table, in one transaction. The foreign keys Django makes are
  deferrable, so they are checked at commit, once every row is gone.
- ``ANALYZE djqueue_job``: ``TRUNCATE`` reset the planner's row estimate of the job
  table, and the admin's job list reads that estimate; rows this transaction deleted
  count as dead, so the estimate becomes 0, as it did after ``TRUNCATE``.
- The content types and permissions stay: ``post_migrate`` would create the same rows
  again (with new ids), and finds them there instead. No test makes rows of its own in
  those two tables.

A flush asked for otherwise (resetting sequences, or cascading for a subset of apps)
keeps Django's own ``TRUNCATE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Filled by post_migrate with the same rows after every flush: kept instead.
KEPT = frozenset({"django_content_type", "auth_permission"})


def deleting_flush(truncate: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """A ``DatabaseOperations.sql_flush`` that deletes, falling back on ``truncate``."""

    def sql_flush(
        ops: Any,
        style: Any,
        tables: list[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        if reset_sequences or allow_cascade:
            return truncate(
                ops, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        emptied = [table for table in tables if table not in KEPT]
        if not emptied:
            return []
        statements = ["SET CONSTRAINTS ALL DEFERRED"]
        statements += [f"DELETE FROM {ops.quote_name(table)}" for table in emptied]
        if "djqueue_job" in emptied:
            statements.append("ANALYZE djqueue_job")
        return statements

    return sql_flush
