"""What the chaos suite counts, from what a user can see: job rows and the execution log.

Every function takes a DB-API cursor, so that the same counts are made on the test
database (Django's connection) and on a private cluster (a psycopg connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

RUN_TABLE = "chaos_run"
# A claimed job before it ends: reserved (RECEIVED) or running (STARTED).
HELD = ("RECEIVED", "STARTED")
WAITING = ("PENDING", "RETRY")
FINAL = ("SUCCESS", "FAILURE", "REVOKED")

CREATE_RUN_TABLE = f"""
CREATE TABLE IF NOT EXISTS {RUN_TABLE} (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL,
    attempt int NOT NULL,
    worker text NOT NULL,
    pid int NOT NULL,
    ran_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


@dataclass(frozen=True)
class Tally:
    """The fate of a set of jobs and of their executions."""

    jobs: int
    succeeded: int
    failed: int  # FAILURE or REVOKED
    held: int  # still RECEIVED or STARTED
    waiting: int  # still PENDING or RETRY
    ran_more_than_once: int
    ran_twice_in_one_attempt: int
    succeeded_without_running: int

    @property
    def lost(self) -> int:
        """Jobs that did not end in SUCCESS."""
        return self.jobs - self.succeeded

    def figures(self) -> dict[str, int]:
        return {
            "jobs": self.jobs,
            "lost": self.lost,
            "held at the end": self.held,
            "waiting at the end": self.waiting,
            "failed": self.failed,
            "duplicates": self.ran_more_than_once,
            "duplicates under one attempt": self.ran_twice_in_one_attempt,
            "succeeded without running": self.succeeded_without_running,
        }


def tally(cursor: Any, task_names: Sequence[str]) -> Tally:
    """Count the jobs of ``task_names`` by fate, and their executions in the run log."""
    cursor.execute(
        "SELECT state, count(*) FROM djqueue_job WHERE task_name = ANY(%s) GROUP BY state",
        [list(task_names)],
    )
    states = dict(cursor.fetchall())
    jobs = "(SELECT id FROM djqueue_job WHERE task_name = ANY(%s))"
    return Tally(
        jobs=sum(states.values()),
        succeeded=states.get("SUCCESS", 0),
        failed=states.get("FAILURE", 0) + states.get("REVOKED", 0),
        held=sum(states.get(state, 0) for state in HELD),
        waiting=sum(states.get(state, 0) for state in WAITING),
        ran_more_than_once=_count(
            cursor,
            f"SELECT job_id FROM {RUN_TABLE} WHERE job_id IN {jobs} "
            "GROUP BY job_id HAVING count(*) > 1",
            task_names,
        ),
        ran_twice_in_one_attempt=_count(
            cursor,
            f"SELECT job_id FROM {RUN_TABLE} WHERE job_id IN {jobs} "
            "GROUP BY job_id, attempt HAVING count(*) > 1",
            task_names,
        ),
        succeeded_without_running=_count(
            cursor,
            "SELECT id FROM djqueue_job AS j WHERE task_name = ANY(%s) AND state = 'SUCCESS' "
            f"AND NOT EXISTS (SELECT 1 FROM {RUN_TABLE} AS r WHERE r.job_id = j.id)",
            task_names,
        ),
    )


def unfinished(cursor: Any, task_names: Sequence[str]) -> int:
    """Jobs of ``task_names`` not in a final state."""
    cursor.execute(
        "SELECT count(*) FROM djqueue_job WHERE task_name = ANY(%s) AND NOT state = ANY(%s)",
        [list(task_names), list(FINAL)],
    )
    return int(cursor.fetchone()[0])


def waiting(cursor: Any, task_names: Sequence[str]) -> int:
    """Jobs of ``task_names`` waiting to be claimed (PENDING or RETRY)."""
    cursor.execute(
        "SELECT count(*) FROM djqueue_job WHERE task_name = ANY(%s) AND state = ANY(%s)",
        [list(task_names), list(WAITING)],
    )
    return int(cursor.fetchone()[0])


def held_by(cursor: Any, worker_prefix: str) -> list[str]:
    """Ids of jobs held (RECEIVED or STARTED) in the name of workers ``worker_prefix*``."""
    cursor.execute(
        "SELECT id::text FROM djqueue_job WHERE state = ANY(%s) AND worker LIKE %s",
        [list(HELD), worker_prefix + "%"],
    )
    return [row[0] for row in cursor.fetchall()]


def runs_by(cursor: Any, worker_prefix: str, job_ids: Sequence[str]) -> int:
    """Executions of ``job_ids`` logged by workers ``worker_prefix*``."""
    cursor.execute(
        f"SELECT count(*) FROM {RUN_TABLE} WHERE worker LIKE %s AND job_id = ANY(%s::uuid[])",
        [worker_prefix + "%", list(job_ids)],
    )
    return int(cursor.fetchone()[0])


def ran_by(cursor: Any, worker_prefix: str, job_ids: Sequence[str]) -> set[str]:
    """The ids among ``job_ids`` with an execution logged by workers ``worker_prefix*``."""
    cursor.execute(
        f"SELECT DISTINCT job_id::text FROM {RUN_TABLE} "
        "WHERE worker LIKE %s AND job_id = ANY(%s::uuid[])",
        [worker_prefix + "%", list(job_ids)],
    )
    return {row[0] for row in cursor.fetchall()}


def succeeded(cursor: Any, task_names: Sequence[str]) -> int:
    """Jobs of ``task_names`` in SUCCESS."""
    cursor.execute(
        "SELECT count(*) FROM djqueue_job WHERE task_name = ANY(%s) AND state = 'SUCCESS'",
        [list(task_names)],
    )
    return int(cursor.fetchone()[0])


def _count(cursor: Any, query: str, task_names: Sequence[str]) -> int:
    cursor.execute(f"SELECT count(*) FROM ({query}) AS found", [list(task_names)])
    return int(cursor.fetchone()[0])
