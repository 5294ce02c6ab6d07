"""The worker hosts suite's site: the hosts, the private server they reach over their
links, processes started on hosts, and Django pointed at that server.

The server is a private PostgreSQL cluster the suite makes (``tests/chaos/cluster.py``)
listening on 127.0.0.1 and on the near end of every host's link, trusting logins from
the lab's addresses. The shared server on 5432 is not used: making it listen on the
lab's addresses would mean reconfiguring and restarting it. A forwarder of ours on the
near ends, passing connections on to 127.0.0.1:5432, would have been quicker to start,
but the server would then see a healthy local connection from the forwarder where a
host went silent: the server's own keepalives and ``tcp_user_timeout``, which djqueue
sets on its sessions so that a vanished host's sessions end and what they hold is freed
(the scheduler's leader lock above all), would never fire, and the tests would be about
the forwarder. With the server on the link, a cut host is gone for the server too.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from tests.acceptance.conftest import DEFAULT_ENV, REPO_ROOT, WorkerProcess
from tests.chaos import cluster as clusters
from tests.hosts import lab as labs

DB = "djqueue_hosts"
SMOKE_HOSTS = 2
FULL_HOSTS = 4
# Guards against a dead link (djqueue.db.sessions), shortened from their defaults (10 s
# idle, 5 s between probes, 3 probes, 30 s unacknowledged) as a deployment on a local
# network may: the server ends a silent host's sessions within about 4 s (the user
# timeout also ends a quiet one whose probes go unanswered), within a test's patience.
LINK_GUARDS = {
    "DJQUEUE_TCP_KEEPALIVE_IDLE_SECONDS": "1",
    "DJQUEUE_TCP_KEEPALIVE_INTERVAL_SECONDS": "1",
    "DJQUEUE_TCP_KEEPALIVE_COUNT": "2",
    "DJQUEUE_TCP_USER_TIMEOUT_SECONDS": "4",
}
WORKER_READY = " ready: pool="
BEAT_READY = "ready: waiting to lead"


@dataclass
class Site:
    """The hosts and the server they reach."""

    lab: labs.Lab
    cluster: clusters.PrivateCluster

    def connect(self) -> Any:
        """A new autocommit psycopg connection to the suite's database."""
        return self.cluster.connect(DB)


class HostProcess(WorkerProcess):
    """A ``runworker`` or ``runbeat`` process on a host."""

    def __init__(
        self, host: labs.Host, label: str, process: subprocess.Popen[bytes], log_path: Path
    ) -> None:
        # Named after the host (its UTS hostname): "djqueue@host1" or "beat@host1".
        super().__init__(f"{label}@{host.name}", process, log_path)
        self.host = host


class OnHosts:
    """Starts processes on the site's hosts for one test; all are killed at its end."""

    def __init__(self, site: Site, log_dir: Path) -> None:
        self.site = site
        self.log_dir = log_dir
        self.started: list[HostProcess] = []
        # The link guards of processes started from now on ({}: djqueue's defaults).
        self.guards = dict(LINK_GUARDS)

    @property
    def hosts(self) -> list[labs.Host]:
        return self.site.lab.hosts

    def worker(self, host: labs.Host, *args: str, wait_ready: bool = True) -> HostProcess:
        """``runworker`` on ``host`` (threads pool, two threads, unless ``args`` say)."""
        options = args or ("-P", "threads", "-c", "2")
        process = self._start(host, "djqueue", "runworker", *options)
        if wait_ready:
            process.wait_for_log(WORKER_READY)
        return process

    def beat(self, host: labs.Host) -> HostProcess:
        """``runbeat`` on ``host``."""
        return self._start(host, "beat", "runbeat")

    def workers(
        self,
        hosts: list[labs.Host],
        per_host: int,
        options: Callable[[labs.Host], tuple[str, ...]] = lambda host: (),
    ) -> list[HostProcess]:
        """``per_host`` workers on each of ``hosts`` (with ``options(host)``), started side
        by side; returned once all are ready."""
        started = [
            self.worker(host, *options(host), wait_ready=False)
            for host in hosts
            for _ in range(per_host)
        ]
        for process in started:
            process.wait_for_log(WORKER_READY)
        return started

    def on(self, host: labs.Host) -> list[HostProcess]:
        return [process for process in self.started if process.host is host]

    def _start(self, host: labs.Host, label: str, command: str, *args: str) -> HostProcess:
        number = sum(process.host is host for process in self.started) + 1
        log_path = self.log_dir / f"{host.name}-{command}-{number}.log"
        manage = [sys.executable, "-m", "django", command, "--settings=tests.settings"]
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                host.command(*manage, "-l", "info", *args),
                cwd=REPO_ROOT,
                env=self._env(host),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        started = HostProcess(host, label, process, log_path)
        self.started.append(started)
        return started

    def _env(self, host: labs.Host) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(DEFAULT_ENV)
        env.update(self.guards)
        env.update(
            PGHOST=host.server_address,
            PGPORT=str(self.site.cluster.port),
            DJQUEUE_TEST_DB_NAME=DB,
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
        )
        return env

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()

    def logs(self) -> list[tuple[str, str]]:
        return [(process.log_path.stem, process.log()) for process in self.started]


@contextlib.contextmanager
def django_on(host: str, port: int, name: str) -> Iterator[None]:
    """Inside the block, Django's default database is ``name`` at ``host:port``.

    Every thread's connection reads the one settings dict; the test's own is closed on
    the way in and out, so that it connects afresh to whichever is current.
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    # One dict in Django's handler and in the wrapper; both, should that ever change.
    dicts = [connections.settings[DEFAULT_DB_ALIAS]]
    if wrapper.settings_dict is not dicts[0]:
        dicts.append(wrapper.settings_dict)
    saved = {key: dicts[0][key] for key in ("HOST", "PORT", "NAME")}
    wrapper.close()
    for settings_dict in dicts:
        settings_dict.update(HOST=host, PORT=str(port), NAME=name)
    try:
        yield
    finally:
        wrapper.close()
        for settings_dict in dicts:
            settings_dict.update(saved)
