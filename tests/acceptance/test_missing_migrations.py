"""runworker and runbeat on a database without djqueue's tables, or with older ones: one
line that says to run migrate, and exit status 1; no traceback, no retry loop."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from tests.acceptance.conftest import REPO_ROOT

MIGRATE = "run `python manage.py migrate`"


def _server() -> dict[str, str]:
    params = connection.settings_dict
    return {"host": params["HOST"], "port": str(params["PORT"]), "user": params["USER"]}


@pytest.fixture
def bare_database(django_db_setup: None) -> Iterator[str]:
    """An empty database of its own, named after the test database, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_bare"

    def drop() -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    drop()
    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    drop()


def _django(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJQUEUE_TEST_DB_NAME": database, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        # The settings first: a command with sub-commands takes no options after them.
        [sys.executable, "-m", "django", args[0], "--settings=tests.settings", *args[1:]],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command",
    [
        ("runworker", "-P", "solo", "-l", "info"),
        ("runbeat", "-l", "info"),
        ("runworker", "-B", "-l", "info"),
        ("djqueue", "status"),
        ("prunejobs",),
    ],
)
def test_no_tables_is_one_line_and_exit_1(bare_database: str, command: tuple[str, ...]) -> None:
    ran = _django(bare_database, *command)

    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert ran.stderr.strip() == (
        f"CommandError: djqueue's tables are missing from database 'default' "
        f"({bare_database}): {MIGRATE}"
    )
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "unavailable" not in ran.stdout + ran.stderr


def test_tables_one_migration_behind_name_it(bare_database: str) -> None:
    previous, latest = _last_two_migrations()
    migrated = _django(bare_database, "migrate", "djqueue", previous, "-v", "0")
    assert migrated.returncode == 0, migrated.stderr

    for command in (("runworker", "-P", "solo"), ("runbeat",)):
        ran = _django(bare_database, *command)
        assert ran.returncode == 1
        assert ran.stderr.strip() == (
            f"CommandError: djqueue's tables in database 'default' ({bare_database}) lack "
            f"1 newer migration(s) ({latest}): {MIGRATE}"
        )


def _last_two_migrations() -> tuple[str, str]:
    names = sorted(path.stem for path in (REPO_ROOT / "djqueue" / "migrations").glob("0*.py"))
    return names[-2], names[-1]
