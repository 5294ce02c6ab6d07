"""A private PgBouncer in transaction pooling mode in front of the test server.

Debian's ``pgbouncer`` program, run in the foreground as a child process with its own
ini and user list in a temporary directory, on a free port, trusting every login (as
the test server does). It is always stopped on the way out. As root it drops to the
``postgres`` user (PgBouncer refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from tests import packages
from tests.acceptance.conftest import UPSTREAM, _free_port, wait_until

PROGRAM = os.environ.get("DJQUEUE_PGBOUNCER", "pgbouncer")
RUN_AS = "postgres"
# Few server connections: transactions of different clients share them, as in production.
POOL_SIZE = 4

_INI = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {userlist}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
server_login_retry = 1
logfile =
pidfile =
ignore_startup_parameters = extra_float_digits
{extra}"""


def program() -> str | None:
    """The path of the pgbouncer program (Debian's package installed if it is missing and
    may be), or None."""
    found = shutil.which(PROGRAM) or shutil.which(PROGRAM, path="/usr/sbin:/usr/local/sbin")
    if found is None and PROGRAM == "pgbouncer" and packages.install("pgbouncer"):
        found = shutil.which(PROGRAM) or shutil.which(PROGRAM, path="/usr/sbin:/usr/local/sbin")
    return found


def unavailable() -> str:
    """Why a private PgBouncer cannot be started here ("" when it can)."""
    if program() is None:
        return f"{PROGRAM!r} not found (apt-get install pgbouncer, or set DJQUEUE_PGBOUNCER)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root and there is no {RUN_AS!r} user to run PgBouncer as"
    return ""


def version() -> tuple[int, int]:
    """PgBouncer's (major, minor) version, from ``pgbouncer --version``."""
    found = program()
    assert found is not None
    out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    assert match, f"cannot read the version in {out!r}"
    return int(match.group(1)), int(match.group(2))


class PgBouncer:
    """One running PgBouncer; see the module."""

    def __init__(
        self,
        upstream: tuple[str, int] = UPSTREAM,
        pool_size: int = POOL_SIZE,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.upstream = upstream
        self.pool_size = pool_size
        # More [pgbouncer] settings, such as idle_transaction_timeout.
        self.settings = settings or {}
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="djqueue-pgbouncer-"))
        self.log_path = self.root / "pgbouncer.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Write the configuration, start the program, wait until it accepts logins."""
        found = program()
        assert found is not None, unavailable()
        userlist = self.root / "userlist.txt"
        userlist.write_text('"postgres" ""\n')
        ini = self.root / "pgbouncer.ini"
        ini.write_text(
            _INI.format(
                host=self.upstream[0],
                port=self.upstream[1],
                listen_port=self.port,
                userlist=userlist,
                pool_size=self.pool_size,
                extra="".join(f"{name} = {value}\n" for name, value in self.settings.items()),
            )
        )
        command = [found, str(ini)]
        if os.geteuid() == 0:
            # It reads its files after dropping to that user.
            self.root.chmod(0o755)
            for path in (userlist, ini):
                path.chmod(0o644)
            command = [found, "-u", RUN_AS, str(ini)]
        with self.log_path.open("wb") as log:
            # No -d: it stays in the foreground, our child, logging to stderr.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._accepts, timeout=15, what="PgBouncer to accept connections", interval=0.1)

    def _accepts(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"pgbouncer exited with {self.process.returncode}:\n{self.log()}")
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        """Stop the program (for sure) and delete its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} sslmode=disable"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """A new autocommit connection to ``dbname`` through PgBouncer."""
        return psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5, **kwargs)


@contextlib.contextmanager
def running(
    upstream: tuple[str, int] = UPSTREAM,
    settings: dict[str, str] | None = None,
    pool_size: int = POOL_SIZE,
) -> Iterator[PgBouncer]:
    """A started PgBouncer in front of ``upstream`` (with more ``settings``, and
    ``pool_size`` server connections per database), stopped on the way out."""
    bouncer = PgBouncer(upstream, pool_size=pool_size, settings=settings)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
