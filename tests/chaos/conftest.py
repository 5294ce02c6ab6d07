"""The chaos suite's fixtures: its size, its figures, the run log, load, a bad network.

The suite runs as a smoke test in the default run (about two minutes on two cores; a
per-pool scenario on one built-in pool, see ``fleet.pool_params``) and at full size with
``--chaos-full`` or ``DJQUEUE_CHAOS_FULL=1`` (about 15 minutes, ``tox -e chaos``; the
tests marked ``chaos(full=True)`` too). Either way every test records its figures (lost
jobs, duplicates, exits, recovery times) before it asserts, and they are printed at the
end of the run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.acceptance.conftest import Workers
from tests.chaos import counts
from tests.chaos.proxy import ChaosProxy
from tests.figures import Figures

FIGURES = Figures("chaos figures")


@dataclass(frozen=True)
class Scale:
    """How big each scenario is: counts, durations and how often chaos strikes."""

    name: str
    # kill -9 under load: workers at once, jobs, seconds of work in the backlog, kills.
    kill_workers: int
    kill_jobs: int
    kill_work_seconds: float
    kills: int
    kill_every: tuple[float, float]
    # The network between a worker and PostgreSQL: load, and disruptions per test.
    net_rate: float
    net_disruption: float
    net_rounds: int
    # Server restarts and crashes: seconds of sending, jobs per second, events.
    server_seconds: float
    server_rate: float
    server_events: int
    # Schedulers: processes, leader kills and the time between them.
    beats: int
    beat_kills: int
    beat_every: tuple[float, float]
    # Poison jobs: innocent jobs around them, workers.
    poison_innocents: int
    poison_workers: int


SMOKE = Scale(
    name="smoke",
    kill_workers=2,
    kill_jobs=300,
    kill_work_seconds=5,
    kills=2,
    kill_every=(0.8, 1.2),
    net_rate=40,
    net_disruption=2.5,
    net_rounds=1,
    server_seconds=5,
    server_rate=100,
    server_events=1,
    beats=5,
    beat_kills=2,
    beat_every=(1.5, 2.0),
    poison_innocents=100,
    poison_workers=2,
)
FULL = Scale(
    name="full",
    kill_workers=3,
    kill_jobs=3000,
    kill_work_seconds=80,
    kills=25,
    kill_every=(2.0, 4.0),
    net_rate=60,
    net_disruption=4.0,
    net_rounds=4,
    server_seconds=60,
    server_rate=150,
    server_events=4,
    beats=5,
    beat_kills=20,
    beat_every=(2.0, 5.0),
    poison_innocents=2000,
    poison_workers=3,
)


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    """The smoke size, or the full one when asked for."""
    full = pytestconfig.getoption("--chaos-full") or os.environ.get("DJQUEUE_CHAOS_FULL") == "1"
    return FULL if full else SMOKE


# Figures ------------------------------------------------------------------------------


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict the test fills with what it counted; printed at the end of the run."""
    return FIGURES.record(request)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print every chaos test's figures."""
    FIGURES.print(terminalreporter, config)


# Workers, with their logs on failure -------------------------------------------------

LOG_TAIL_LINES = 80


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the end of each worker's log to a failed test's report."""
    report = yield
    started: list[Workers] = getattr(item, "_chaos_workers", [])
    if report.failed:
        for group in started:
            for hostname, text in group.logs():
                tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:])
                report.sections.append((f"worker {hostname} log (end)", tail))
    return report


def workers_for(request: pytest.FixtureRequest, log_dir: Path, db_name: str) -> Workers:
    """A :class:`Workers` whose logs are attached to the test's failure report."""
    group = Workers(log_dir, db_name)
    if not hasattr(request.node, "_chaos_workers"):
        request.node._chaos_workers = []
    request.node._chaos_workers.append(group)
    return group


@pytest.fixture
def workers(
    request: pytest.FixtureRequest, tmp_path: Path, transactional_db: None
) -> Iterator[Workers]:
    """Start worker (or scheduler) processes on the test database; all die at teardown."""
    group = workers_for(request, tmp_path, connection.settings_dict["NAME"])
    try:
        yield group
    finally:
        group.kill_all()


@pytest.fixture
def run_log(workers: Workers) -> Iterator[str]:
    """The ``chaos_run`` table: one row per execution of a recording task.

    It needs ``workers`` so that it is dropped after they are gone: a process that died
    holding a lock on the table would otherwise block the drop.
    """
    with connection.cursor() as cursor:
        cursor.execute(counts.CREATE_RUN_TABLE)
        cursor.execute(f"TRUNCATE {counts.RUN_TABLE}")
    try:
        yield counts.RUN_TABLE
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {counts.RUN_TABLE}")


@pytest.fixture
def proxy() -> Iterator[ChaosProxy]:
    """A misbehaving TCP proxy in front of the shared PostgreSQL server, open."""
    made = ChaosProxy()
    made.open()
    try:
        yield made
    finally:
        made.close()


# Waiting ------------------------------------------------------------------------------


def settle(check: Callable[[], Any], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``check`` until it is truthy (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def db_now() -> Any:
    """The database's clock (rows are dated by it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def with_cursor(query: Callable[..., Any], *args: Any) -> Any:
    """Run a :mod:`counts` function on the test database."""
    with connection.cursor() as cursor:
        return query(cursor, *args)


# Load -------------------------------------------------------------------------------


class Producer:
    """Sends ``chaos_record`` jobs from a thread of the test, about ``rate`` a second."""

    TICK = 0.1

    def __init__(self, rate: float, job_seconds: float) -> None:
        self.per_tick = max(1, round(rate * self.TICK))
        self.job_seconds = job_seconds
        self.sent = 0
        self._running = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-producer", daemon=True)

    def start(self) -> None:
        self._running.set()
        self._thread.start()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> int:
        """Stop sending; return how many jobs were sent (re-raises the thread's error)."""
        self.close()
        if self._error is not None:
            raise self._error
        return self.sent

    def close(self) -> None:
        """Stop sending, if not stopped yet (teardown)."""
        self._done.set()
        self._running.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        from tests.testapp import tasks

        try:
            while not self._done.is_set():
                if not self._running.wait(self.TICK):
                    continue
                tasks.chaos_record.delay_many([(self.job_seconds,)] * self.per_tick)
                self.sent += self.per_tick
                self._done.wait(self.TICK)
        except BaseException as exc:
            self._error = exc
        finally:
            connection.close()  # this thread's own connection


@pytest.fixture
def producers() -> Iterator[list[Producer]]:
    """Producers a test starts; all stopped at teardown."""
    started: list[Producer] = []
    try:
        yield started
    finally:
        for producer in started:
            producer.close()
