"""Acceptance fixtures: real ``runworker`` processes, a cuttable TCP proxy, DB polling.

Workers run as subprocesses against the test database, so every test using them needs
``@pytest.mark.django_db(transaction=True)``: rows must be committed to be seen.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.acceptance.network import PrivateNetwork

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ("127.0.0.1", 5432)

# Small lease and heartbeat so that crash recovery happens within a test's patience.
DEFAULT_ENV = {
    "DJQUEUE_LEASE_SECONDS": "2",
    "DJQUEUE_HEARTBEAT_SECONDS": "0.5",
    "DJQUEUE_GRACE_SECONDS": "10",
    "DJQUEUE_POLL_SECONDS": "0.5",
}


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class WorkerProcess:
    """One ``manage.py runworker`` subprocess and its log file."""

    def __init__(self, hostname: str, process: subprocess.Popen[bytes], log_path: Path):
        self.hostname = hostname
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def name_prefix(self) -> str:
        """Job rows name their worker ``<hostname>.<pid>.<random>``."""
        return f"{self.hostname}.{self.pid}."

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` shows in the log; fail early if the worker died."""
        # Generous: a worker starting on a machine loaded by parallel suites can take
        # well over 15 s to import Django and connect; a dead worker still fails at once.

        def seen() -> bool:
            if text in self.log():
                return True
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker {self.hostname} exited with {self.process.returncode} "
                    f"before logging {text!r}"
                )
            return False

        wait_until(seen, timeout, f"{text!r} in the log of worker {self.hostname}")

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end and return its exit code."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.hostname} still running {timeout:g}s later"
            ) from None

    def kill(self) -> None:
        """End the process for sure (resuming it first in case it is stopped)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


class Workers:
    """Starts workers for one test; every one is killed at teardown."""

    def __init__(self, log_dir: Path, db_name: str) -> None:
        self.log_dir = log_dir
        self.db_name = db_name
        self.started: list[WorkerProcess] = []

    def start(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        entry: Sequence[str] = ("-m", "django", "runworker"),
        prefix: str = "w",
        ready: str = " ready: pool=",
    ) -> WorkerProcess:
        """Start ``python <entry>`` (``runworker`` by default) with ``args``.

        By default this waits until the process logs ``ready``.
        """
        hostname = f"{prefix}{len(self.started) + 1}"
        log_path = self.log_dir / f"{hostname}.log"
        command = [
            sys.executable,
            *entry,
            "--settings=tests.settings",
            "-l",
            "info",
            "-n",
            hostname,
            *args,
        ]
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self._env(env or {}),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(hostname, process, log_path)
        self.started.append(worker)
        if wait_ready:
            worker.wait_for_log(ready)
        return worker

    def _env(self, overrides: dict[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(DEFAULT_ENV)
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        env["DJQUEUE_TEST_DB_NAME"] = self.db_name
        env.update(overrides)
        return env

    def kill_all(self) -> None:
        for worker in self.started:
            worker.kill()

    def logs(self) -> list[tuple[str, str]]:
        return [(worker.hostname, worker.log()) for worker in self.started]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the logs of a failed test's workers to its report."""
    report = yield
    workers: Workers | None = getattr(item, "_djqueue_workers", None)
    if workers is not None and report.failed:
        for hostname, text in workers.logs():
            report.sections.append((f"worker {hostname} log", text))
    return report


@pytest.fixture
def workers(
    request: pytest.FixtureRequest, tmp_path: Path, transactional_db: None
) -> Iterator[Workers]:
    """Start ``runworker`` subprocesses on the test database; all die at teardown."""
    started = Workers(tmp_path, connection.settings_dict["NAME"])
    request.node._djqueue_workers = started
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture
def run_table(transactional_db: None) -> Iterator[str]:
    """A table the ``record_run`` task writes one row to per execution."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS acceptance_run "
            "(id bigserial PRIMARY KEY, job_id uuid NOT NULL, attempt int NOT NULL, "
            "pid int NOT NULL)"
        )
        cursor.execute("TRUNCATE acceptance_run")
    yield "acceptance_run"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS acceptance_run")


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; can be cut (connections dropped, new
    ones refused) and restored on the same port, to play a database outage.

    Given a :class:`PrivateNetwork`, it listens inside it (clients must connect from
    there too, see ``network.submit``) and can be frozen: the link between clients and
    proxy then drops every packet, as a dead network link does, until it is thawed.
    """

    def __init__(self, network: PrivateNetwork | None = None) -> None:
        self.network = network
        self.port = _free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._serving = threading.Event()
        self._acceptor: threading.Thread | None = None

    def restore(self) -> None:
        """Accept connections again."""
        if self.network is None:
            listener = self._listening_socket()
        else:
            listener = self.network.run(self._listening_socket)
        # A timeout lets the acceptor notice a cut: close() does not wake accept().
        listener.settimeout(0.1)
        self._listener = listener
        self._serving.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def _listening_socket(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        return listener

    def freeze(self) -> None:
        """Keep every connection open, and let no packet through (private network)."""
        assert self.network is not None, "only a proxy in a private network can freeze"
        self.network.freeze()

    def thaw(self) -> None:
        """Let packets through again."""
        assert self.network is not None
        self.network.thaw()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        self._serving.clear()
        if self._acceptor is not None:
            self._acceptor.join()
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._serving.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(UPSTREAM)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes one way until either side closes."""
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        # Let the other direction see the end too.
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A TCP proxy in front of PostgreSQL, initially cut (nothing listening)."""
    made = TcpProxy()
    try:
        yield made
    finally:
        made.cut()


@pytest.fixture
def private_proxy() -> Iterator[TcpProxy]:
    """A TCP proxy in front of PostgreSQL, accepting, inside a private network whose
    link the test can freeze; skipped where such a network cannot be made."""
    from tests.acceptance import network

    reason = network.unavailable()
    if reason is not None:
        pytest.skip(f"a frozen link {reason}")
    made = TcpProxy(network.PrivateNetwork())
    made.restore()
    try:
        yield made
    finally:
        assert made.network is not None
        made.network.close()
        made.cut()
