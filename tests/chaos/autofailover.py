"""A private pg_auto_failover formation: a monitor and two PostgreSQL nodes, one primary
and one synchronous standby, with automatic failover.

Debian's ``postgresql-15-auto-failover`` (``pg_autoctl``), each of the three run in the
foreground as a child process (``pg_autoctl create ... --run``) in a temporary
directory, on free ports, trusting every login from 127.0.0.1. pg_autoctl refuses to
run as root: as root it runs as the ``postgres`` user, and its configuration and state
go to the temporary directory too (``XDG_*``), never to that user's home.

The monitor's health checks are shortened (:data:`MONITOR_SETTINGS`), so that a dead
primary is failed over within about ten seconds instead of about forty.
:meth:`Formation.kill_primary` kills the primary's node (its ``pg_autoctl`` and its
PostgreSQL, ``kill -9``), as a machine that dies would; the monitor then promotes the
standby by itself.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from tests import packages
from tests.acceptance.conftest import REPO_ROOT, wait_until
from tests.chaos import cluster as clusters
from tests.chaos.fleet import family
from tests.chaos.proxy import free_port

PROGRAM = os.environ.get("DJQUEUE_PG_AUTOCTL", "pg_autoctl")
RUN_AS = clusters.SERVER_USER
# Milliseconds; the defaults are 5000, 5000, 2, 2000, 20000 and 30000.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_timeout": 1000,
    "pgautofailover.health_check_max_retries": 1,
    "pgautofailover.health_check_retry_delay": 500,
    "pgautofailover.node_considered_unhealthy_timeout": 3000,
    "pgautofailover.primary_demote_timeout": 3000,
}
# Seconds a node may take to reach a state (initdb, a base backup, on a loaded machine).
STATE_TIMEOUT = 180.0


def program() -> str | None:
    """The path of ``pg_autoctl`` (Debian's package installed if it is missing and may be),
    or None."""
    found = shutil.which(PROGRAM)
    if (
        found is None
        and PROGRAM == "pg_autoctl"
        and packages.install("postgresql-15-auto-failover")
    ):
        found = shutil.which(PROGRAM)
    return found


def unavailable() -> str:
    """Why a formation cannot be made here ("" when it can)."""
    if program() is None:
        return (
            f"{PROGRAM!r} not found (apt-get install postgresql-15-auto-failover, or set "
            "DJQUEUE_PG_AUTOCTL)"
        )
    return clusters.unavailable()


class Formation:
    """A monitor and two nodes; see the module."""

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.root = Path(tempfile.mkdtemp(prefix="djqueue-autofailover-"))
        self.monitor_port = free_port()
        self.ports = {"node1": free_port(), "node2": free_port()}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()

    # Making it ------------------------------------------------------------------------

    def create_monitor(self) -> None:
        """Start the monitor and shorten its health checks."""
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o755)
        self._start(
            "monitor",
            "create",
            "monitor",
            *("--pgdata", str(self.root / "monitor"), "--pgport", str(self.monitor_port)),
            *("--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run"),
        )
        wait_until(self._monitor_ready, STATE_TIMEOUT, "the pg_auto_failover monitor", 0.2)
        with self._monitor() as conn:
            for name, value in MONITOR_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = {int(value)}")
            conn.execute("SELECT pg_reload_conf()")

    def create_node(self, name: str) -> None:
        """Start node ``name``: the first becomes a primary (``single``), the second
        its standby (``secondary``, after a base backup of the primary)."""
        self._start(
            name,
            "create",
            "postgres",
            *("--pgdata", str(self.root / name), "--pgport", str(self.ports[name])),
            *("--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", name),
            *("--dbname", self.dbname, "--monitor", self._monitor_uri()),
            *("--auth", "trust", "--no-ssl", "--run"),
        )

    def wait_for_states(self, wanted: dict[str, str]) -> None:
        """Wait until each node named in ``wanted`` has reached that state."""
        wait_until(
            lambda: all(self.states().get(name) == (s, s) for name, s in wanted.items()),
            STATE_TIMEOUT,
            f"the nodes to reach {wanted} (now {self.states()})",
            0.5,
        )

    def states(self) -> dict[str, tuple[str, str]]:
        """Each node's (reported state, state the monitor assigned)."""
        self._check_alive()
        try:
            with self._monitor() as conn:
                rows = conn.execute(
                    "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node"
                ).fetchall()
        except psycopg.Error:
            return {}
        return {name: (reported, goal) for name, reported, goal in rows}

    def checkpoint(self) -> None:
        """A checkpoint on the primary, so that the standby's base backup (whose own
        checkpoint is spread over minutes) has nothing left to write."""
        with self.connect("postgres") as conn:
            conn.execute("CHECKPOINT")

    def synchronous_standby_names(self) -> str:
        """The primary's ``synchronous_standby_names`` ("" when commits do not wait)."""
        with self.connect("postgres") as conn:
            row = conn.execute("SHOW synchronous_standby_names").fetchone()
        return str(row[0]) if row else ""

    # Failing it -------------------------------------------------------------------------

    def primary(self) -> str:
        """The name of the node that is primary now."""
        for name, (reported, _) in self.states().items():
            if reported in ("primary", "wait_primary", "single") and name not in self.killed:
                return name
        raise AssertionError(f"no primary among {self.states()}")

    def fail_over(self) -> None:
        """kill -9 the primary's node, its pg_autoctl and its PostgreSQL together."""
        victim = self.primary()
        process = self.processes[victim]
        self.killed.add(victim)
        for pid in reversed(family(process.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(10)

    # Reaching it ------------------------------------------------------------------------

    def hosts(self) -> tuple[str, str]:
        """``HOST`` and ``PORT`` for a multi-host connection to both nodes."""
        return "127.0.0.1,127.0.0.1", ",".join(str(port) for port in self.ports.values())

    def dsn(self, dbname: str) -> str:
        """The multi-host connection string of ``dbname``: whichever node accepts writes."""
        host, port = self.hosts()
        return (
            f"host={host} port={port} user=postgres dbname={dbname} target_session_attrs=read-write"
        )

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A new autocommit connection to ``dbname`` on the node that accepts writes."""
        return psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5)

    def process_env(self, dbname: str, **extra: str) -> dict[str, str]:
        """The environment of a process of this project that reaches ``dbname`` through
        the multi-host connection, keeping only a node that accepts writes."""
        host, port = self.hosts()
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(
            PGHOST=host,
            PGPORT=port,
            DJQUEUE_TEST_TARGET_SESSION_ATTRS="read-write",
            DJQUEUE_TEST_DB_NAME=dbname,
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    # Ending it --------------------------------------------------------------------------

    def remove(self) -> None:
        """Stop every node and the monitor (for sure), then delete the directory."""
        for process in self.processes.values():
            if process.poll() is None:
                # pg_autoctl stops its PostgreSQL (fast) on SIGTERM.
                self._signal_autoctl(process, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                for pid in reversed(family(process.pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # Helpers ----------------------------------------------------------------------------

    def _start(self, name: str, *args: str) -> None:
        found = program()
        assert found is not None, unavailable()
        env = {
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "PG_CONFIG": str(clusters.BIN / "pg_config"),
            "PATH": f"{clusters.BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.root),
        }
        command = ["env", *(f"{k}={v}" for k, v in env.items()), found, *args]
        if os.geteuid() == 0:
            if shutil.which("runuser"):
                command = ["runuser", "-u", RUN_AS, "--", *command]
            else:
                command = ["su", RUN_AS, "-s", "/bin/sh", "-c", shlex.join(command)]
        with (self.root / f"{name}.log").open("wb") as log:
            # Its own working directory: the server user may not be allowed into ours.
            self.processes[name] = subprocess.Popen(
                command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT
            )

    def _signal_autoctl(self, process: subprocess.Popen[bytes], signum: int) -> None:
        """Send ``signum`` to the pg_autoctl processes under ``process`` (runuser
        passes no signal on)."""
        for pid in family(process.pid):
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if name.startswith("pg_autoctl"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if name not in self.killed and process.poll() is not None:
                raise AssertionError(
                    f"pg_autoctl ({name}) exited with {process.returncode}:\n{self.log(name)}"
                )

    def _monitor_uri(self) -> str:
        return (
            f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover"
            "?sslmode=disable"
        )

    def _monitor(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.monitor_port,
            user="postgres",
            dbname="pg_auto_failover",
            autocommit=True,
            connect_timeout=5,
        )

    def _monitor_ready(self) -> bool:
        self._check_alive()
        try:
            with self._monitor() as conn:
                conn.execute("SELECT count(*) FROM pgautofailover.node")
        except psycopg.Error:
            return False
        return True


@contextlib.contextmanager
def formation(dbname: str) -> Iterator[Formation]:
    """A monitor and a primary with database ``dbname`` (no standby yet: the caller
    prepares the database, then adds it with :meth:`Formation.create_node`), removed on
    the way out."""
    made = Formation(dbname)
    try:
        made.create_monitor()
        made.create_node("node1")
        made.wait_for_states({"node1": "single"})
        yield made
    finally:
        made.remove()
