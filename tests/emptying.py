"""How the suite empties the test database after a test that commits.

A test marked ``django_db(transaction=True)`` runs on committed rows, and Django empties
every table after it (the ``flush`` command), then sends ``post_migrate`` to put back the
content types and permissions. On PostgreSQL Django empties them with one ``TRUNCATE``
of every table, which gives each table and index new files: about 0.1 s a test on a
quiet two-core machine and 0.3 to 0.8 s on a loaded one, over some 450 such tests,
although a test touches a few tables at most. :func:`truncating_flush` replaces
Django's statement in the test process (worker processes never flush):

- Only the tables whose file holds anything are truncated (with ``CASCADE``, for the
  tables that refer to them): an empty file is what ``TRUNCATE`` would leave, and a
  table a test wrote to, even in a transaction it rolled back, has pages. What was
  truncated is as after Django's flush, the planner's statistics included; ``DELETE``
  would leave the dead rows and the table's size behind, on a server that may not run
  autovacuum.
- The content types and permissions stay: ``post_migrate`` would create the same rows
  again (with new ids), and finds them there instead. No test makes rows of its own in
  those two tables, and they refer to no other table (so no ``CASCADE`` reaches them).

A flush asked for otherwise (resetting sequences, or cascading for a subset of apps)
keeps Django's own ``TRUNCATE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Filled by post_migrate with the same rows after every flush: kept instead.
KEPT = frozenset({"django_content_type", "auth_permission"})

# Truncates, in one statement, the tables named in the array whose file is not empty.
TRUNCATE_USED = """
DO $$
DECLARE
    used text;
BEGIN
    SELECT string_agg(quote_ident(name), ', ') INTO used
    FROM unnest(ARRAY[{names}]::text[]) AS name
    WHERE pg_relation_size(to_regclass(quote_ident(name))) > 0;
    IF used IS NOT NULL THEN
        EXECUTE 'TRUNCATE ' || used || ' CASCADE';
    END IF;
END
$$
"""


def truncating_flush(truncate: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """A ``DatabaseOperations.sql_flush`` that truncates only the tables in use."""

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
        # Table names are Django's, quoted as SQL string literals.
        names = ", ".join("'" + table.replace("'", "''") + "'" for table in emptied)
        return [TRUNCATE_USED.format(names=names)]

    return sql_flush
