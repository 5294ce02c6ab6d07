"""A private PostgreSQL 15 cluster in a temporary directory, on a free port.

The chaos suite restarts and crashes it; the shared server is never touched. As root,
the server's programs run as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from tests.acceptance.conftest import REPO_ROOT
from tests.chaos.proxy import free_port

BIN = Path(os.environ.get("DJQUEUE_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
# Quick to start and to crash; fsync only matters when the machine dies, not the server.
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 -c shared_buffers=32MB"
)


def unavailable() -> str:
    """Why a private cluster cannot be made here ("" when it can)."""
    for program in ("initdb", "pg_ctl"):
        if not (BIN / program).is_file():
            return f"{BIN / program} not found (set DJQUEUE_CHAOS_PG_BIN to PostgreSQL's bin)"
    if os.geteuid() != 0:
        return ""
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return f"running as root and there is no {SERVER_USER!r} user to run the server as"
    if not (shutil.which("runuser") or shutil.which("su")):
        return "running as root and neither runuser nor su is there to drop to postgres"
    return ""


class PrivateCluster:
    """One cluster: made by :meth:`create`, gone after :meth:`remove`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="djqueue-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()

    def create(self) -> None:
        """initdb, then start the server."""
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.root} {SERVER_OPTIONS}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self, mode: str) -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (a crash: no checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs, and delete the directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A new autocommit connection to ``dbname``."""
        return psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> None:
        """An empty database ``name`` with djqueue's tables, migrated by Django."""
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--settings=tests.settings", "-v", "0"],
            cwd=REPO_ROOT,
            env=self.process_env(name),
            check=True,
            capture_output=True,
        )

    def process_env(self, dbname: str) -> dict[str, str]:
        """The environment of a process of this project that uses ``dbname`` here."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(
            PGHOST="127.0.0.1",
            PGPORT=str(self.port),
            DJQUEUE_TEST_DB_NAME=dbname,
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _run(self, program: str, *args: str) -> None:
        command = [str(BIN / program), *args]
        if os.geteuid() == 0:
            if shutil.which("runuser"):
                command = ["runuser", "-u", SERVER_USER, "--", *command]
            else:
                command = ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(command)]
        # Its own working directory: the server user may not be allowed into ours.
        subprocess.run(command, cwd=self.root, check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started private cluster, stopped and deleted on the way out."""
    cluster = PrivateCluster()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.remove()
