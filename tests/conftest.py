"""Suite-wide options: ``--soak`` runs the long tests marked ``soak`` (skipped otherwise);
``--chaos-full`` runs the chaos suite (``tests/chaos``) at full size instead of as a smoke
test, with the tests marked ``chaos(full=True)``; ``--pgbouncer-full`` runs the tests
marked ``pgbouncer(full=True)`` too, ``--failover-full`` those marked
``failover(full=True)``, and ``--hosts-full`` those marked ``hosts(full=True)`` (the
worker hosts suite, ``tests/hosts``, on four hosts).

After a test that commits, only the tables in use are truncated, not every table
(tests/emptying.py says why)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import emptying

# A Celery project kept as data (tests/acceptance/test_celery_project.py moves and runs
# it): its modules import celery, and its tests are the project's own.
collect_ignore = ["celery_project"]


@pytest.fixture(scope="session", autouse=True)
def _truncate_tables_in_use() -> Iterator[None]:
    """Django's flush after each test that commits truncates only the tables in use."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            DatabaseOperations, "sql_flush", emptying.truncating_flush(DatabaseOperations.sql_flush)
        )
        yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", default=False, help="also run long soak tests")
    parser.addoption(
        "--chaos-full",
        action="store_true",
        default=False,
        help="run the chaos suite at full size (about 15 minutes; also DJQUEUE_CHAOS_FULL=1)",
    )
    parser.addoption(
        "--pgbouncer-full",
        action="store_true",
        default=False,
        help="run every PgBouncer test, not only the smoke ones (also DJQUEUE_PGBOUNCER_FULL=1)",
    )
    parser.addoption(
        "--failover-full",
        action="store_true",
        default=False,
        help="run the failover tests on pg_auto_failover too, not only the smoke ones "
        "(also DJQUEUE_FAILOVER_FULL=1)",
    )
    parser.addoption(
        "--hosts-full",
        action="store_true",
        default=False,
        help="run every worker hosts test, on four hosts (also DJQUEUE_HOSTS_FULL=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kinds = (
        ("chaos", "chaos"),
        ("pgbouncer", "PgBouncer"),
        ("failover", "failover"),
        ("hosts", "hosts"),
    )
    for name, label in kinds:
        option = f"--{name}-full"
        if config.getoption(option) or os.environ.get(f"DJQUEUE_{name.upper()}_FULL"):
            continue
        smoke_only = pytest.mark.skip(reason=f"full {label} test: run with {option}")
        for item in items:
            marker = item.get_closest_marker(name)
            if marker is not None and marker.kwargs.get("full"):
                item.add_marker(smoke_only)
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
