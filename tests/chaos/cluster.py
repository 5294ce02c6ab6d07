"""A private PostgreSQL 15 cluster in a temporary directory, on a free port.

The chaos suite restarts and crashes it; the shared server is never touched. As root,
the server's programs run as the ``postgres`` user (PostgreSQL refuses to run as root).
It listens on 127.0.0.1, and on more addresses when asked (the worker hosts of
``tests/hosts`` reach it over their own links), trusting every login from them.
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from tests.acceptance.conftest import REPO_ROOT
from tests.chaos.proxy import free_port

BIN = Path(os.environ.get("DJQUEUE_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
# Quick to start and to crash; fsync only matters when the machine dies, not the server.
SERVER_OPTIONS = "-c fsync=off -c shared_buffers=32MB"
# Stale directories of a run that died are found by this prefix (see remove_stale()).
DIRECTORY_PREFIX = "djqueue-chaos-pg-"


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

    def __init__(
        self,
        listen: Sequence[str] = (),
        trusted: Sequence[str] = (),
        max_connections: int = 100,
    ) -> None:
        """``listen``: addresses to listen on besides 127.0.0.1; ``trusted``: networks
        (CIDR) whose logins are trusted besides the local ones."""
        # The owner's pid in the name: a later run can tell a dead run's leftovers.
        self.root = Path(tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.listen = ("127.0.0.1", *listen)
        self.trusted = tuple(trusted)
        self.max_connections = max_connections

    def create(self) -> None:
        """initdb, then start the server."""
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        if self.trusted:
            self._trust(self.trusted)
        self.start()

    def _trust(self, networks: Sequence[str]) -> None:
        lines = "".join(f"host all all {network} trust\n" for network in networks)
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(lines)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={','.join(self.listen)} "
            f"-c max_connections={self.max_connections} {SERVER_OPTIONS}"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self, mode: str) -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (a crash: no checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs, and delete the directory."""
        _remove(self.root)

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
        _run_server_program(self.root, program, *args)


@contextlib.contextmanager
def private_cluster(
    listen: Sequence[str] = (), trusted: Sequence[str] = (), max_connections: int = 100
) -> Iterator[PrivateCluster]:
    """A started private cluster, stopped and deleted on the way out."""
    cluster = PrivateCluster(listen, trusted, max_connections)
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.remove()


def remove_stale() -> list[Path]:
    """Stop and delete the clusters of runs that died without removing theirs.

    A directory names its owner's pid; those of processes still alive are left alone
    (another run of the suite may be using them). Returns the directories removed.
    """
    removed = []
    for root in Path(tempfile.gettempdir()).glob(f"{DIRECTORY_PREFIX}*"):
        owner = root.name[len(DIRECTORY_PREFIX) :].partition("-")[0]
        if not owner.isdigit() or alive(int(owner)):
            continue
        _remove(root)
        removed.append(root)
    return removed


def _remove(root: Path) -> None:
    """Stop the server of the cluster in ``root`` if it runs, and delete ``root``."""
    data = root / "data"
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _run_server_program(root, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    shutil.rmtree(root, ignore_errors=True)


def _run_server_program(root: Path, program: str, *args: str) -> None:
    """Run one of the server's programs, as the server's user when we are root."""
    command = [str(BIN / program), *args]
    if os.geteuid() == 0:
        if shutil.which("runuser"):
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        else:
            command = ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(command)]
    # Its own working directory: the server user may not be allowed into ours.
    subprocess.run(command, cwd=root, check=True, capture_output=True, timeout=60)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
