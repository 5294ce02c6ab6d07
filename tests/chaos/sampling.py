"""What the server-side chaos tests share: a completion-rate sampler that rides out
outages, a producer process, and the check that every job whose sending returned has
a row.

Each takes a ``connect`` callable (a new autocommit psycopg connection to the database
under test), so that the same code follows one server (restarts, crashes) or whichever
server of a pair accepts writes (failover).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from tests.acceptance.conftest import REPO_ROOT
from tests.chaos import counts

RECORD = ["tests.testapp.tasks.chaos_record"]
# Seconds over which the completion rate is measured.
WINDOW = 0.5

Connect = Callable[[], psycopg.Connection[Any]]


class Sampler:
    """Counts succeeded jobs every 0.1 s from a thread, across outages."""

    def __init__(self, connect: Connect) -> None:
        self.connect = connect
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def rate_since(self, since: float, window: float = WINDOW) -> float:
        """Jobs succeeded per second over the last ``window`` seconds, counting only
        samples taken after ``since`` (0 until there are ``window`` seconds of them)."""
        samples = [(t, n) for t, n in list(self.samples) if t >= since]
        if not samples or samples[-1][0] - samples[0][0] < window:
            return 0.0
        now, latest = samples[-1]
        then, before = [(t, n) for t, n in samples if t <= now - window][-1]
        return (latest - before) / (now - then)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.wait(0.1):
            try:
                conn = conn or self.connect()
                with conn.cursor() as cursor:
                    self.samples.append((time.monotonic(), counts.succeeded(cursor, RECORD)))
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


@contextlib.contextmanager
def producer(
    env: dict[str, str],
    rate: float,
    seconds: float,
    job_seconds: float,
    acked: Path,
    log: Path,
    *extra: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``tests.chaos.produce`` with ``env``; killed if still running after."""
    command = [
        sys.executable,
        "-m",
        "tests.chaos.produce",
        str(rate),
        str(seconds),
        str(job_seconds),
        str(acked),
        *extra,
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)


def missing(conn: psycopg.Connection[Any], acked: Path) -> int:
    """Ids in ``acked`` that have no job row."""
    ids = acked.read_text().split()
    row = conn.execute(
        "SELECT count(*) FROM unnest(%s::uuid[]) AS a(id) "
        "WHERE NOT EXISTS (SELECT 1 FROM djqueue_job AS j WHERE j.id = a.id)",
        [ids],
    ).fetchone()
    return int(row[0]) if row else 0
