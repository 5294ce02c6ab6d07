"""What a finished job costs to get rid of: deleted by pruning from one table, or kept
in time-range partitions that are dropped whole.

Two tables of ``--rows`` jobs, copied from the job table with all its indexes:

- ``bench_flat``, laid out as djqueue's job table is: a finish updates the row in
  place, pruning deletes it in keyset batches, vacuum removes it and its index entries;
- ``bench_part``, partitioned by ``finished_at``: waiting and running jobs in the
  default partition (``finished_at`` NULL), finished ones in an hourly partition the
  finish moves them to (a cross-partition update: a delete and an insert); pruning
  drops a partition.

Per job: the time and WAL of the finish (in batches of 100, as workers write outcomes),
of pruning and of the vacuum after it. Run by ``size.py --phases partitions`` on its
full database, or alone with Django set up.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks import size_load

# The job table's indexes, for a copy: the primary key (with the partition key on the
# partitioned copy, where it must be part of every unique index) and the rest as they are.
INDEXES = """
SELECT indexdef FROM pg_indexes
WHERE tablename = 'djqueue_job' AND indexname NOT IN ('djqueue_job_pkey', 'djqueue_job_unique')
"""


def measure(rows: int, batch: int = 5000) -> dict[str, Any]:
    """Make both tables, finish ``rows`` jobs in each, prune them, vacuum; the costs."""
    with size_load.connect() as db:
        _make(db, rows)
        figures: dict[str, Any] = {}
        for table in ("bench_flat", "bench_part"):
            figures[f"{table}: finish"] = _per_job(db, rows, lambda t=table: _finish(db, t))
        figures["bench_flat: prune (keyset DELETE)"] = _per_job(
            db, rows, lambda: _delete(db, batch)
        )
        figures["bench_part: prune (DROP partition)"] = _per_job(
            db, rows, lambda: db.execute("DROP TABLE bench_part_done")
        )
        figures["bench_flat: vacuum after"] = _per_job(
            db, rows, lambda: db.execute("VACUUM bench_flat")
        )
        figures["bench_part: vacuum after"] = _per_job(
            db, rows, lambda: db.execute("VACUUM bench_part_live")
        )
        db.execute("DROP TABLE IF EXISTS bench_flat, bench_part")
    return figures


def _make(db: Any, rows: int) -> None:
    db.execute("DROP TABLE IF EXISTS bench_flat, bench_part")
    indexes = [row[0] for row in db.execute(INDEXES).fetchall()]
    db.execute("CREATE TABLE bench_flat (LIKE djqueue_job INCLUDING DEFAULTS)")
    db.execute(
        "CREATE TABLE bench_part (LIKE djqueue_job INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (finished_at)"
    )
    db.execute("CREATE TABLE bench_part_live PARTITION OF bench_part DEFAULT")
    db.execute(
        "CREATE TABLE bench_part_done PARTITION OF bench_part "
        "FOR VALUES FROM ('-infinity') TO ('infinity')"
    )
    db.execute("ALTER TABLE bench_flat ADD PRIMARY KEY (id)")
    db.execute("CREATE UNIQUE INDEX ON bench_part (id, finished_at)")
    for definition in indexes:
        for table in ("bench_flat", "bench_part"):
            named = definition.split(" ON ", 1)[1].replace("public.djqueue_job", table, 1)
            db.execute(f"CREATE INDEX ON {named.removeprefix('ONLY ')}")
    # Jobs as running ones: copies of finished rows with their end taken away.
    for table in ("bench_flat", "bench_part"):
        db.execute(
            f"INSERT INTO {table} SELECT * FROM djqueue_job WHERE finished_at IS NOT NULL LIMIT %s",
            [rows],
        )
        db.execute(f"UPDATE {table} SET state = 'STARTED', finished_at = NULL, result = NULL")
        db.execute(f"VACUUM ANALYZE {table}")


def _finish(db: Any, table: str) -> None:
    """Finish every job, 100 to a statement, as workers write outcomes."""
    ids = [row[0] for row in db.execute(f"SELECT id FROM {table}").fetchall()]
    for start in range(0, len(ids), 100):
        db.execute(
            f"UPDATE {table} SET state = 'SUCCESS', finished_at = now(), "
            "result = 'null'::jsonb WHERE id = ANY(%s)",
            [ids[start : start + 100]],
        )


def _delete(db: Any, batch: int) -> None:
    """Delete every finished row in keyset batches, as pruning does."""
    last = "-infinity"
    while True:
        found = db.execute(
            """
            WITH gone AS (
                DELETE FROM bench_flat WHERE id IN (
                    SELECT id FROM bench_flat WHERE finished_at >= %s
                    ORDER BY finished_at LIMIT %s)
                RETURNING finished_at)
            SELECT count(*), max(finished_at) FROM gone
            """,
            [last, batch],
        ).fetchone()
        if found[0] < batch:
            return
        last = found[1]


def _per_job(db: Any, rows: int, action: Any) -> dict[str, float]:
    wal_before = db.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    wal = db.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", [wal_before]).fetchone()[0]
    return {"µs per job": seconds / rows * 1e6, "WAL bytes per job": float(wal) / rows}
