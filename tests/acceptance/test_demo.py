"""The example project's ``manage.py rundemo`` runs end to end on a database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
# Named after the run's test database, so that suites run side by side (each with its own
# DJQUEUE_TEST_DATABASE) never drop each other's demo database.
DEMO_DATABASE = os.environ.get("DJQUEUE_TEST_DATABASE", "test_djqueue") + "_demo"
EXPECTED_JOBS = 9


def _server() -> dict[str, str]:
    """Connection settings of the local PostgreSQL server, as the test settings read them."""
    return {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
    }


def _drop_demo_database() -> None:
    server = _server()
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
        # FORCE: a worker that outlived a failed run must not keep the database alive.
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEMO_DATABASE))
        )


@pytest.fixture
def demo_database_url() -> Iterator[str]:
    """A URL naming a database that does not exist yet; it is dropped afterwards."""
    _drop_demo_database()
    server = _server()
    yield f"postgres://{server['user']}@{server['host']}:{server['port']}/{DEMO_DATABASE}"
    _drop_demo_database()


def _run_demo(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        # pytest-django exported the test settings; the demo needs the project's own.
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_COLORS": "nocolor",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "rundemo", "--timeout", "40"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def _summary_rows(stdout: str) -> list[str]:
    """The job rows of the summary table (indented lines after its two header lines)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("[demo] Summary"))
    rows = []
    for line in lines[start + 3 :]:
        if not line.startswith("  "):
            break
        rows.append(line)
    return rows


def _leave_an_earlier_run_behind() -> None:
    """The demo's database as an earlier, interrupted run might leave it: a stray table."""
    server = _server()
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
    with psycopg.connect(dbname=DEMO_DATABASE, autocommit=True, **server) as connection:
        connection.execute("CREATE TABLE leftover_from_an_earlier_run (id int)")


def _tables() -> set[str]:
    with psycopg.connect(dbname=DEMO_DATABASE, **_server()) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows}


def test_rundemo_starts_afresh_and_every_job_succeeds(demo_database_url: str) -> None:
    _leave_an_earlier_run_behind()

    completed = _run_demo(demo_database_url)
    output = f"--- stdout ---\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"

    assert completed.returncode == 0, output
    assert f"Database '{DEMO_DATABASE}': dropped and created afresh." in completed.stdout, output
    tables = _tables()
    assert "leftover_from_an_earlier_run" not in tables
    assert "djqueue_job" in tables
    rows = _summary_rows(completed.stdout)
    assert len(rows) == EXPECTED_JOBS, output
    assert all("  SUCCESS  " in row for row in rows), output
    assert f"Demo finished: all {EXPECTED_JOBS} jobs succeeded." in completed.stdout, output
    # The worker really ran them: its log shows the flaky payment being retried.
    assert "charge_order" in completed.stderr and "will retry" in completed.stderr, output
    assert "Worker exited with code 0." in completed.stdout, output
    # The scheduler sent the periodic task of BEAT_SCHEDULE, and the worker ran it.
    assert (
        "Sent example_project.shop.tasks.build_sales_report (periodic task 'sales-report')"
        in completed.stderr
    ), output
    assert (
        "Periodic task 'sales-report': sent by the scheduler and run by the worker."
        in completed.stdout
    ), output
    assert "Scheduler exited with code 0." in completed.stdout, output
