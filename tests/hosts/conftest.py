"""The worker hosts suite's fixtures: the site (made once per run: two hosts for the
smoke tests, four with ``--hosts-full``), processes on its hosts for each test, and the
figures each test records (printed at the end of the run).

Each test starts from empty tables and healed links, and every process it started on
a host is killed at its end, pass or fail; what a run that died left behind (hosts,
links, server directories) is removed when the next one starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import cluster as clusters
from tests.chaos import counts
from tests.figures import Figures
from tests.hosts import lab as labs
from tests.hosts.site import DB, FULL_HOSTS, SMOKE_HOSTS, OnHosts, Site, django_on

LOG_TAIL_LINES = 80
FIGURES = Figures("worker hosts figures")


def full_size(config: pytest.Config) -> bool:
    """Whether the full-size tests run (``--hosts-full`` or DJQUEUE_HOSTS_FULL=1)."""
    return bool(config.getoption("--hosts-full") or os.environ.get("DJQUEUE_HOSTS_FULL"))


@pytest.fixture(scope="session")
def full(pytestconfig: pytest.Config) -> bool:
    """Whether the suite runs at full size."""
    return full_size(pytestconfig)


@pytest.fixture(scope="session")
def site(pytestconfig: pytest.Config) -> Iterator[Site]:
    """A lab of hosts and a private server listening on their links, for the session."""
    reason = labs.unavailable() or clusters.unavailable()
    if reason:
        pytest.skip(f"no worker hosts here: {reason}")
    labs.remove_stale()
    clusters.remove_stale()
    lab = labs.Lab(FULL_HOSTS if full_size(pytestconfig) else SMOKE_HOSTS)
    try:
        cluster = clusters.PrivateCluster(
            listen=lab.server_addresses, trusted=[str(lab.network)], max_connections=300
        )
        try:
            cluster.create()
            cluster.create_database(DB)
            with cluster.connect(DB) as conn:
                conn.execute(counts.CREATE_RUN_TABLE)
            yield Site(lab, cluster)
        finally:
            lab.kill_all()  # before the server goes: nothing retries against its absence
            cluster.remove()
    finally:
        lab.close()


@pytest.fixture
def on_hosts(
    request: pytest.FixtureRequest, site: Site, tmp_path: Path, django_db_blocker: Any
) -> Iterator[OnHosts]:
    """Processes on the hosts, Django on the site's database, empty tables, healed links."""
    with site.connect() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND (tablename LIKE 'djqueue%%' OR tablename = %s)",
                [counts.RUN_TABLE],
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    group = OnHosts(site, tmp_path)
    request.node._host_processes = group
    try:
        with django_db_blocker.unblock(), django_on("127.0.0.1", site.cluster.port, DB):
            yield group
    finally:
        group.kill_all()
        site.lab.kill_all()
        site.lab.heal_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the end of each host process's log to a failed test's report."""
    report = yield
    group: OnHosts | None = getattr(item, "_host_processes", None)
    if group is not None and report.failed:
        for name, text in group.logs():
            tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:])
            report.sections.append((f"{name} log (end)", tail))
    return report


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict the test fills with what it counted; printed at the end of the run."""
    return FIGURES.record(request)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print every worker hosts test's figures."""
    FIGURES.print(terminalreporter, config)
