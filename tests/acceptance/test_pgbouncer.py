"""djqueue through PgBouncer in transaction pooling mode (Debian's ``pgbouncer``).

Each test starts its own PgBouncer (tests/acceptance/pgbouncer.py) in front of the test
server; skipped, with the reason, where the program is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.acceptance import pgbouncer

pytestmark = pytest.mark.pgbouncer


@pytest.fixture
def bouncer() -> Iterator[pgbouncer.PgBouncer]:
    """A private PgBouncer in transaction mode in front of the test server."""
    reason = pgbouncer.unavailable()
    if reason:
        pytest.skip(f"no PgBouncer: {reason}")
    with pgbouncer.running() as started:
        yield started


def test_transaction_pooling_shares_server_connections_and_loses_prepared_statements(
    bouncer: pgbouncer.PgBouncer,
) -> None:
    """What djqueue must live with: two clients, one idle server connection between them.

    Session state (a backend, its prepared statements) passes from client to client
    between transactions; so a statement one client prepares collides with another's
    (PgBouncer before 1.21 does not track them).
    """
    with bouncer.connect() as first, bouncer.connect() as second:
        first_backend = first.execute("SELECT pg_backend_pid()").fetchone()
        assert second.execute("SELECT pg_backend_pid()").fetchone() == first_backend
        first.execute("SELECT %s::int + 1", [1], prepare=True)
        if pgbouncer.version() >= (1, 21):
            pytest.skip("this PgBouncer may track prepared statements (max_prepared_statements)")
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            second.execute("SELECT %s::int + 2", [1], prepare=True)
