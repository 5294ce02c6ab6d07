"""A private PostgreSQL cluster for the benchmarks, in a temporary directory on a free
port, with PostgreSQL's default settings (``fsync`` on).

Why: WAL is written by the whole cluster, so WAL bytes per job can only be read where
nothing else writes; and a shared server's other users would weigh on every figure.
As root, the server's programs run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

BIN = Path(os.environ.get("DJQUEUE_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"


def unavailable() -> str:
    """Why a private cluster cannot be made here ("" when it can)."""
    for program in ("initdb", "pg_ctl"):
        if not (BIN / program).is_file():
            return f"{BIN / program} not found (set DJQUEUE_BENCH_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user"
        if not shutil.which("runuser"):
            return "running as root and runuser is not there to drop to postgres"
    return ""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One private cluster: started by :meth:`start`, gone after :meth:`remove`."""

    def __init__(self, settings: Sequence[str] = ()) -> None:
        # Server settings besides the defaults, as "name=value".
        self.settings = list(settings)
        self.root = Path(tempfile.mkdtemp(prefix="djqueue-bench-pg-"))
        self.data = self.root / "data"
        self.port = free_port()

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {setting}" for setting in self.settings)
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", options, "start")

    def remove(self) -> None:
        """Stop the server (fast) and delete the directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(BIN / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        subprocess.run(command, cwd=self.root, check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def private(settings: Sequence[str] = ()) -> Iterator[Cluster]:
    """A started private cluster (with ``settings``), removed on the way out."""
    cluster = Cluster(settings)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
