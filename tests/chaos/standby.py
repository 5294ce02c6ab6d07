"""A private primary and its hot standby, replicating synchronously, promoted by hand.

The primary is a :class:`~tests.chaos.cluster.PrivateCluster`; the standby is made from
a base backup of it (``pg_basebackup -R``) and streams from it. Once the standby has
caught up, the primary waits for it at every commit (``synchronous_standby_names``),
so that a commit that returned is on both servers. :meth:`StandbyPair.fail_over`
plays what a failover manager does when the primary dies: the primary is stopped
without a checkpoint (a crash) and the standby is promoted.

Clients reach the pair through a multi-host connection string (:meth:`hosts`) with
``target_session_attrs=read-write``: libpq tries each server in turn and keeps the one
that accepts writes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
from collections.abc import Iterator
from typing import Any

import psycopg

from tests.acceptance.conftest import wait_until
from tests.chaos import cluster as clusters


class Standby(clusters.PrivateCluster):
    """A hot standby of ``primary``, made from a base backup of it."""

    def __init__(self, primary: clusters.PrivateCluster) -> None:
        super().__init__()
        self.primary = primary

    def create(self) -> None:
        """Take a base backup of the primary, then start streaming from it."""
        if os.geteuid() == 0:
            user = pwd.getpwnam(clusters.SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        # -R writes standby.signal and the primary's address; -X stream copies the WAL
        # written while the backup runs.
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"),
            *("-D", str(self.data), "-R", "-X", "stream", "--checkpoint=fast"),
        )
        self.start()

    def promote(self) -> None:
        """End recovery: the standby becomes a primary that accepts writes."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

    def in_recovery(self) -> bool:
        with self.connect() as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])


class StandbyPair:
    """A primary and a synchronous hot standby; see the module."""

    def __init__(self) -> None:
        self.primary = clusters.PrivateCluster()
        self.standby = Standby(self.primary)
        self.failed_over = False

    def create(self) -> None:
        """Start the primary, make the standby, and make replication synchronous."""
        self.primary.create()
        self.standby.create()
        with self.primary.connect() as conn:
            # After the base backup, so that the standby's own copy of the settings
            # does not wait for a standby of its own once it is promoted.
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
        wait_until(self._synchronous, timeout=30, what="the standby to replicate synchronously")

    def _synchronous(self) -> bool:
        with self.primary.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
            ).fetchone()
        return bool(row and row[0])

    def create_database(self, name: str) -> None:
        """A database ``name`` with djqueue's tables, on the primary (so on both)."""
        self.primary.create_database(name)

    def fail_over(self) -> None:
        """Crash the primary (``pg_ctl stop -m immediate``) and promote the standby."""
        self.primary.stop("immediate")
        self.standby.promote()
        self.failed_over = True

    def current_primary(self) -> clusters.PrivateCluster:
        """The server that accepts writes now."""
        return self.standby if self.failed_over else self.primary

    def hosts(self) -> tuple[str, str]:
        """``HOST`` and ``PORT`` for a multi-host connection: both servers, primary first."""
        return "127.0.0.1,127.0.0.1", f"{self.primary.port},{self.standby.port}"

    def process_env(self, dbname: str, **extra: str) -> dict[str, str]:
        """The environment of a process of this project that reaches ``dbname`` through
        the multi-host connection, keeping only a server that accepts writes."""
        host, port = self.hosts()
        env = self.primary.process_env(dbname)
        env.update(PGHOST=host, PGPORT=port, DJQUEUE_TEST_TARGET_SESSION_ATTRS="read-write")
        env.update(extra)
        return env

    def remove(self) -> None:
        """Stop both servers and delete their directories."""
        for server in (self.standby, self.primary):
            with contextlib.suppress(Exception):
                server.remove()
        for server in (self.standby, self.primary):
            shutil.rmtree(server.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        """The multi-host connection string of ``dbname``: whichever server accepts writes."""
        host, port = self.hosts()
        return (
            f"host={host} port={port} user=postgres dbname={dbname} target_session_attrs=read-write"
        )

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A new autocommit connection to ``dbname`` on the server that accepts writes."""
        return psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def standby_pair() -> Iterator[StandbyPair]:
    """A started pair, both servers stopped and deleted on the way out."""
    pair = StandbyPair()
    try:
        pair.create()
        yield pair
    finally:
        pair.remove()
