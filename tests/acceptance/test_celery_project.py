"""A Celery project runs on djqueue with only its import lines changed.

``tests/celery_project`` is a small Django shop written for Celery, as such projects
are: ``proj/celery.py`` with its app, ``CELERY_*`` settings (routes by name and by
glob, a beat schedule with crontabs and intervals, time limits, eager test settings),
tasks with retries, time limits, chains and a chord, and the project's own tests, run
eagerly. The test copies it, changes its import lines as docs/celery-migration.md says
(and adds ``"djqueue"`` to ``INSTALLED_APPS``, the installation step), checks that
nothing else changed, then runs the project's tests, ``manage.py check``, two real
workers and the scheduler.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.acceptance.conftest import REPO_ROOT, wait_until

PROJECT = REPO_ROOT / "tests" / "celery_project"
# The project's database: the project's test runner makes "test_" + this one and keeps
# it (--keepdb), already migrated, for the workers and the scheduler. Named after the
# run's test database, so that suites run side by side never share it.
DATABASE = os.environ.get("DJQUEUE_TEST_DATABASE", "test_djqueue") + "_celery_project"
MIGRATED = f"test_{DATABASE}"

# The import lines docs/celery-migration.md tells a Celery user to change, as regular
# expressions over one line and what the line becomes.
IMPORTS = [
    (r"from celery import Celery", "from djqueue import App as Celery"),
    (
        r"from celery\.utils\.log import get_task_logger",
        "from logging import getLogger as get_task_logger",
    ),
    (r"from celery\.(\w+) import (.+)", r"from djqueue.\1 import \2"),
    (r"from celery import (.+)", r"from djqueue import \1"),
]
# The installation step (docs/installation.md): the one line that is not an import.
INSTALLED = ('    "shop",\n', '    "djqueue",\n    "shop",\n')


def _moved(target: Path) -> Path:
    """The project copied to ``target`` with its import lines changed."""
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*.py"):
        lines = []
        for line in path.read_text().splitlines(keepends=True):
            for pattern, replacement in IMPORTS:
                if re.fullmatch(pattern, line.rstrip("\n")):
                    line = re.sub(pattern, replacement, line.rstrip("\n")) + "\n"
                    break
            lines.append(line)
        path.write_text("".join(lines))
    settings = target / "proj" / "settings.py"
    settings.write_text(settings.read_text().replace(*INSTALLED))
    return target


def _changed_lines(before: Path, after: Path) -> list[str]:
    """Every line that differs between the two trees' Python files."""
    changed = []
    for path in sorted(before.rglob("*.py")):
        moved = after / path.relative_to(before)
        for line in difflib.unified_diff(
            path.read_text().splitlines(), moved.read_text().splitlines(), lineterm="", n=0
        ):
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
                changed.append(line)
    return changed


class Gateway:
    """The payment provider, on a local port: the first charge of each order is refused
    as busy (503); ``/status`` and ``/catalogue`` hang while ``hanging`` is set."""

    def __init__(self) -> None:
        self.hanging = threading.Event()
        self.released = threading.Event()
        self.charged: list[str] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if gateway.hanging.is_set():
                    gateway.released.wait(20)
                if self.path.endswith("/status"):
                    self._reply(200, {"status": "ok"})
                else:
                    self._reply(200, {"items": ["card"]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reference = body["reference"]
                gateway.charged.append(reference)
                if gateway.charged.count(reference) == 1:
                    self._reply(503, {"error": "busy"})
                else:
                    self._reply(201, {"id": f"pay_{reference}"})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A worker killed by a time limit leaves its request behind: nothing to report.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_port}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def _server() -> dict[str, str]:
    return {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
    }


def _drop(name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _rows(query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dbname=MIGRATED, **_server()) as connection:
        return connection.execute(query, params).fetchall()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    made = Gateway()
    yield made
    made.close()


@pytest.fixture
def project(tmp_path: Path, gateway: Gateway) -> Iterator[tuple[Path, dict[str, str]]]:
    """The moved project and the environment its processes run in."""
    _drop(MIGRATED)
    server = _server()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PG", "CELERY_"))
    }
    env.update(
        PYTHONPATH=f"{tmp_path / 'project'}:{REPO_ROOT}",
        PYTHONUNBUFFERED="1",
        POSTGRES_DB=DATABASE,
        POSTGRES_USER=server["user"],
        POSTGRES_HOST=server["host"],
        POSTGRES_PORT=server["port"],
        PAYMENT_GATEWAY_URL=gateway.url,
        # Small heartbeat and poll, so that the processes notice things within a test.
        DJANGO_COLORS="nocolor",
    )
    yield _moved(tmp_path / "project"), env
    _drop(MIGRATED)


class Processes:
    """``manage.py`` subprocesses of the project; all are killed at the end."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, *args: str, ready: str) -> Callable[[], None]:
        """Start ``manage.py args``; return what waits until its log shows ``ready``."""
        log = self.cwd / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log))

        def up() -> bool:
            assert process.poll() is None, f"{name} exited:\n{log.read_text()}"
            return ready in log.read_text()

        return lambda: wait_until(up, timeout=30, what=f"{name} to start")

    def stop(self) -> None:
        for process, _ in self.started:
            process.kill()
            process.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for _, log in self.started)


# Sends the project's work as its views and beat would, waits for it, and prints what
# came of it (run with ``manage.py shell -c``).
DRIVE = """
import json
from decimal import Decimal

from django.utils import timezone

from djqueue import AsyncResult
from djqueue.db.models import Job
from djqueue.exceptions import TimeLimitExceeded
from shop import tasks
from shop.models import GatewayCheck, Order, Payment, SalesReport

facts = {}
order = Order.objects.create(email="ann@example.com", total=Decimal("30.00"))
receipt = tasks.place_order(order.pk)
receipt.get(timeout=30)
steps, step = [], receipt
while step is not None:
    steps.append([step.name, step.queue, step.worker.split(".")[0], step.state])
    step = step.parent
facts["chain"] = steps[::-1]
payment = Payment.objects.get(order=order)
facts["payment"] = [payment.reference, payment.attempts]
facts["payment_task_is_the_charge"] = payment.task_id == receipt.parent.parent.id
order.refresh_from_db()
facts["order"] = [order.paid, order.fulfilled_at is not None]

today = timezone.localdate().isoformat()
weekly = tasks.report_weekly_sales.delay(today)
chord_id = weekly.get(timeout=30)
facts["weekly"] = [weekly.queue, AsyncResult(chord_id).get(timeout=30)]
facts["report"] = [str(r.total) for r in SalesReport.objects.filter(days=7)]
facts["queues"] = sorted(set(Job.objects.values_list("task_name", "queue")))

check = tasks.check_gateway.delay()
facts["check"] = [check.get(timeout=20), GatewayCheck.objects.get().note]
job = Job.objects.get(pk=check.id)
facts["check_seconds"] = (job.finished_at - job.started_at).total_seconds()

sync = tasks.sync_payment_methods.apply_async(soft_time_limit=1, time_limit=3)
try:
    sync.get(timeout=20)
except TimeLimitExceeded as exc:
    facts["sync"] = ["TimeLimitExceeded", str(exc)]
print("FACTS " + json.dumps(facts))
"""


@pytest.mark.timeout(150)
def test_a_celery_project_runs_with_its_import_lines_changed(
    project: tuple[Path, dict[str, str]], gateway: Gateway
) -> None:
    moved, env = project
    changed = _changed_lines(PROJECT, moved)
    # Only import lines changed, and the one line of the installation step.
    assert changed and all(
        re.match(r"[+-](from|import) ", line) or line == '+    "djqueue",' for line in changed
    ), changed
    assert "-from celery import Celery" in changed

    processes = Processes(moved, env)
    try:
        # (a) The project's own tests, eager as the project's test settings say.
        tests = processes.run(
            "test", "shop", "--settings=proj.settings_test", "--keepdb", "--noinput", "-v", "2"
        )
        assert tests.returncode == 0, tests.stdout + tests.stderr
        written = (PROJECT / "shop" / "tests.py").read_text().count("    def test_")
        assert re.search(rf"Ran {written} tests .*\n\nOK", tests.stderr), tests.stderr

        env["POSTGRES_DB"] = MIGRATED
        # (b) Two workers, as the Celery project ran them: one for mail, one for the rest
        # (the pool is prefork, Celery's default, so a hard time limit kills). They start
        # while manage.py check runs.
        shop_ready = processes.start(
            "worker-shop",
            "runworker",
            "-Q",
            "shop,reports",
            "-c",
            "2",
            "-n",
            "shop",
            ready=" ready: pool=prefork",
        )
        mail_ready = processes.start(
            "worker-mail",
            "runworker",
            "-Q",
            "mail",
            "-P",
            "threads",
            "-n",
            "mail",
            ready=" ready: pool=",
        )
        # (d) manage.py check: no warning, no error (the broker and result backend
        # settings are reported as having no effect, at the INFO level).
        check = processes.run("check", "--fail-level", "WARNING")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "djqueue.W" not in check.stderr and "djqueue.E" not in check.stderr, check.stderr
        shop_ready()
        mail_ready()
        gateway.hanging.set()
        drive = processes.run("shell", "-c", DRIVE, timeout=90)
        assert drive.returncode == 0, drive.stdout + drive.stderr + processes.logs()
        facts = json.loads(drive.stdout.split("FACTS ", 1)[1])
        gateway.hanging.clear()
        gateway.released.set()

        # (c) The scheduler sends the beat schedule; the interval entry runs every 2 s.
        processes.start("beat", "runbeat", ready="")()

        def checked_twice() -> bool:
            found = _rows("SELECT count(*) FROM shop_gatewaycheck WHERE up")
            return found[0][0] >= 2

        wait_until(checked_twice, timeout=30, what="the scheduler to send check-gateway twice")
        schedule = _rows(
            "SELECT p.name, p.task, p.kwargs, p.expire_seconds, c.minute, c.hour,"
            " c.day_of_week, c.timezone, i.every, i.period"
            " FROM djqueue_periodictask AS p"
            " LEFT JOIN djqueue_crontabschedule AS c ON c.id = p.crontab_id"
            " LEFT JOIN djqueue_intervalschedule AS i ON i.id = p.interval_id"
            " ORDER BY p.name"
        )
        logs = {log.name: log.read_text() for _, log in processes.started}
    finally:
        gateway.released.set()
        processes.stop()

    # Routed by name (send_receipt), by glob (report_*) and by default (the rest), each
    # run by the worker serving its queue.
    assert facts["chain"] == [
        ["shop.tasks.charge", "shop", "shop", "SUCCESS"],
        ["shop.tasks.fulfil", "shop", "shop", "SUCCESS"],
        ["shop.tasks.send_receipt", "mail", "mail", "SUCCESS"],
    ], logs
    assert facts["queues"] == [
        ["shop.tasks.charge", "shop"],
        ["shop.tasks.day_total", "shop"],
        ["shop.tasks.fulfil", "shop"],
        ["shop.tasks.report_store", "reports"],
        ["shop.tasks.report_weekly_sales", "reports"],
        ["shop.tasks.send_receipt", "mail"],
    ]
    # The gateway was busy on the first charge: autoretry_for sent it again.
    reference = facts["payment"][0]
    assert facts["payment"] == [f"pay_{reference[4:]}", 2]
    assert gateway.charged == [reference[4:]] * 2
    assert facts["payment_task_is_the_charge"] and facts["order"] == [True, True]
    assert "Subject: Your order #" in logs["worker-mail.log"]
    # The chord of the weekly report added up the day's sale.
    assert facts["weekly"] == ["reports", "30.00"] and facts["report"] == ["30.00"]
    # Time limits: the task's own soft limit (2 s) let it record the hung gateway; the
    # per-call soft limit was swallowed by the task's `except Exception`, and its hard
    # limit stopped it.
    assert facts["check"] == [False, "no answer within 2 seconds"]
    assert 2 <= facts["check_seconds"] < 5
    assert facts["sync"] == ["TimeLimitExceeded", "the task ran past its time limit of 3s"]
    assert "Page 1 of the payment methods failed" in logs["worker-shop.log"]
    assert "SoftTimeLimitExceeded" in logs["worker-shop.log"]
    # CELERY_BEAT_SCHEDULE, read as Celery reads it (crontabs in CELERY_TIMEZONE).
    assert schedule == [
        ("check-gateway", "shop.tasks.check_gateway", {}, 10, None, None, None, None, 2, "seconds"),
        (
            "daily-sales-report",
            "shop.tasks.report_daily_sales",
            {},
            None,
            "0",
            "3",
            "*",
            "Europe/Paris",
            None,
            None,
        ),
        (
            "expire-carts",
            "shop.tasks.expire_carts",
            {"older_than_hours": 48},
            None,
            None,
            None,
            None,
            None,
            15,
            "minutes",
        ),
        (
            "weekly-sales-report",
            "shop.tasks.report_weekly_sales",
            {},
            None,
            "30",
            "7",
            "mon",
            "Europe/Paris",
            None,
            None,
        ),
    ], schedule
