"""``manage.py rundemo``: set up the example database, start a worker, send it real tasks.

Needs only a running PostgreSQL server: the database named in ``DATABASE_URL`` is
dropped and created afresh (so every run starts from empty tables) and migrated, a
``runworker`` and a ``runbeat`` subprocess are started, a batch of shop tasks is sent,
the scheduler sends the periodic tasks of ``BEAT_SCHEDULE``, and a summary of the
outcomes is printed before both processes are stopped the way an operator would stop
them (SIGTERM).
"""

from __future__ import annotations

import decimal
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from psycopg import errors, sql

from djqueue import exceptions, states
from djqueue.models import PeriodicRun
from djqueue.result import AsyncResult
from example_project.shop import signup, tasks
from example_project.shop.models import Customer, Order

WORKER_ARGS = ("runworker", "-c", "4", "-l", "info")
BEAT_ARGS = ("runbeat", "-l", "info")
# The periodic task (from BEAT_SCHEDULE in settings) whose runs the demo waits for.
SCHEDULED = "sales-report"
CUSTOMERS = [
    ("Alice Archer", "alice@example.com"),
    ("Bob Baker", "bob@example.com"),
    ("Carol Chen", "carol@example.com"),
]
ORDER_AMOUNTS = ["19.90", "42.00", "7.50"]
# Seconds the worker may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0
RESULT_WIDTH = 70


@dataclass(frozen=True)
class Sent:
    """A job the demo sent, with a description for the summary."""

    label: str
    result: Any


@dataclass(frozen=True)
class Outcome:
    """What became of a sent job by the end of the demo."""

    label: str
    state: str
    value: Any
    # Why there is no value, for a job that did not finish.
    missing: str = ""


class Command(BaseCommand):
    help = "Run the djqueue demo: create and migrate the database, start a worker, send tasks."
    # The database may not exist yet: checks run with `migrate`, once it does.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reuse-database",
            action="store_true",
            help="Keep the database and its rows from an earlier run (default: drop it "
            "and create it afresh).",
        )
        parser.add_argument(
            "--keep-running",
            action="store_true",
            help="Leave the worker running after the summary, until Ctrl-C.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            help="Seconds to wait for all results (default: 30).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._prepare_database(fresh=not options["reuse_database"])
        _stop_on_sigterm()
        worker = self._start_worker()
        scheduler = self._start("the scheduler", BEAT_ARGS)
        outcomes: list[Outcome] | None = None
        scheduled: Outcome | None = None
        try:
            deadline = time.monotonic() + options["timeout"]
            outcomes = self._run_batch(worker, options["timeout"])
            scheduled = self._wait_for_scheduled_run(worker, deadline)
            if options["keep_running"]:
                self._wait_for_interrupt(worker)
        except KeyboardInterrupt:
            self._say("Interrupted.")
        finally:
            worker_code = self._stop(worker)
            self._stop_scheduler(scheduler)
        if outcomes is None or scheduled is None:
            raise CommandError("interrupted before all results were in")
        self._judge_scheduled(scheduled)
        self._judge(outcomes, worker_code)

    # Steps ----------------------------------------------------------------------

    def _prepare_database(self, fresh: bool) -> None:
        database = settings.DATABASES["default"]
        if fresh:
            dropped = drop_database(database)
            create_database_if_missing(database)
            done = "dropped and created afresh" if dropped else "created"
        else:
            done = "created" if create_database_if_missing(database) else "exists, reused"
        self._say(f"Database {database['NAME']!r}: {done}.")
        call_command("migrate", interactive=False, verbosity=0, skip_checks=False)
        self._say("Migrations applied.")

    def _start_worker(self) -> subprocess.Popen[bytes]:
        return self._start("a worker", WORKER_ARGS)

    def _start(self, what: str, args: tuple[str, ...]) -> subprocess.Popen[bytes]:
        command = [sys.executable, str(settings.BASE_DIR / "manage.py"), *args]
        self._say(f"Starting {what}: {' '.join(['python', 'manage.py', *args])}")
        # Its own process group: Ctrl-C reaches only this command, which then stops the
        # worker with one SIGTERM (a second signal would make the worker stop at once).
        return subprocess.Popen(
            command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, process_group=0
        )

    def _run_batch(self, worker: subprocess.Popen[bytes], timeout: float) -> list[Outcome]:
        started = time.monotonic()
        sent = self._send()
        self._say(f"Sent {len(sent)} jobs; waiting for their results (up to {timeout:g}s)...")
        outcomes = [wait_for(job, worker, started + timeout) for job in sent]
        self._print_summary(outcomes, time.monotonic() - started)
        return outcomes

    def _send(self) -> list[Sent]:
        customers = [self._sign_up(name, email) for name, email in CUSTOMERS]
        jobs = [Sent(f"welcome email to {c.email}", r) for c, r in customers]
        orders = [
            Order.objects.create(customer=customer, amount=decimal.Decimal(amount))
            for (customer, _), amount in zip(customers, ORDER_AMOUNTS, strict=True)
        ]
        self._say(f"Placed {len(orders)} orders.")
        jobs.append(self._charge(orders[0]))
        jobs.append(Sent("sales report", tasks.build_sales_report.delay()))
        jobs.extend(self._loyalty([customer for customer, _ in customers]))
        jobs.append(self._follow_up(customers[0][0]))
        return jobs

    def _wait_for_scheduled_run(self, worker: subprocess.Popen[bytes], deadline: float) -> Outcome:
        """Wait for the first run the scheduler sent of the SCHEDULED periodic task."""
        self._say(f"Waiting for the scheduler to send the periodic task {SCHEDULED!r}...")
        while True:
            # The scheduler made the row from BEAT_SCHEDULE when it started.
            runs = PeriodicRun.objects.filter(periodic_task__name=SCHEDULED)
            run = runs.order_by("slot").first()
            if run is not None or time.monotonic() > deadline or worker.poll() is not None:
                break
            time.sleep(0.2)
        label = f"{SCHEDULED} (sent by the scheduler)"
        if run is None:
            return Outcome(label, states.PENDING, None, "(the scheduler sent nothing in time)")
        outcome = wait_for(Sent(label, AsyncResult(run.job_id)), worker, deadline)
        self._say(
            f"The scheduler sent {SCHEDULED!r} for {run.slot:%H:%M:%S}: "
            f"{outcome.state} {outcome.missing or _short(outcome.value)}"
        )
        return outcome

    def _sign_up(self, name: str, email: str) -> tuple[Customer, Any]:
        customer, result = signup.register_customer(name, email)
        self._say(f"Signed up {customer}; welcome email queued on commit.")
        return customer, result

    def _charge(self, order: Order) -> Sent:
        self._say(f"Charging {order}; the gateway times out on the first tries.")
        return Sent(f"charge order #{order.pk} (flaky gateway)", tasks.charge_order.delay(order.pk))

    def _loyalty(self, customers: list[Customer]) -> list[Sent]:
        results = tasks.update_loyalty_points.delay_many([(c.pk,) for c in customers])
        self._say(f"Bulk-enqueued {len(results)} loyalty point updates with delay_many.")
        return [
            Sent(f"loyalty points of {c.email}", r) for c, r in zip(customers, results, strict=True)
        ]

    def _follow_up(self, customer: Customer) -> Sent:
        result = tasks.send_follow_up_email.apply_async((customer.pk,), countdown=2)
        self._say(f"Scheduled a follow-up email to {customer.email} in 2 seconds.")
        return Sent(f"follow-up email (countdown=2) to {customer.email}", result)

    def _wait_for_interrupt(self, worker: subprocess.Popen[bytes]) -> None:
        self._say(
            f"The worker (pid {worker.pid}) keeps running; send more tasks from "
            "`python manage.py shell`. Press Ctrl-C to stop."
        )
        try:
            worker.wait()
        except KeyboardInterrupt:
            self._say("Interrupted.")

    def _stop(self, worker: subprocess.Popen[bytes]) -> int:
        # A second Ctrl-C (a terminal and tox both forward one) must not abandon the
        # worker half-stopped; it is killed below if it does not exit in time.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        if worker.poll() is None:
            self._say(f"Stopping the worker (SIGTERM to pid {worker.pid})...")
            worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._say(f"The worker did not stop within {STOP_TIMEOUT:g}s; killing it.")
            worker.kill()
            code = worker.wait()
        self._say(f"Worker exited with code {code}.")
        return code

    def _stop_scheduler(self, scheduler: subprocess.Popen[bytes]) -> None:
        if scheduler.poll() is None:
            self._say(f"Stopping the scheduler (SIGTERM to pid {scheduler.pid})...")
            scheduler.send_signal(signal.SIGTERM)
        try:
            code = scheduler.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            code = scheduler.wait()
        self._say(f"Scheduler exited with code {code}.")

    def _judge_scheduled(self, scheduled: Outcome) -> None:
        if scheduled.state != states.SUCCESS:
            raise CommandError(f"the scheduler's run of {SCHEDULED!r} did not succeed")
        self._say(f"Periodic task {SCHEDULED!r}: sent by the scheduler and run by the worker.")

    def _judge(self, outcomes: list[Outcome], worker_code: int) -> None:
        unfinished = [o for o in outcomes if o.state != states.SUCCESS]
        if unfinished:
            raise CommandError(f"{len(unfinished)} of {len(outcomes)} jobs did not succeed.")
        if worker_code != 0:
            raise CommandError(f"the worker exited with code {worker_code}")
        self._say(self.style.SUCCESS(f"Demo finished: all {len(outcomes)} jobs succeeded."))

    # Output ---------------------------------------------------------------------

    def _print_summary(self, outcomes: list[Outcome], elapsed: float) -> None:
        width = max(len(o.label) for o in outcomes)
        lines = [f"{'Job':<{width}}  {'State':<8}  Result", f"{'-' * width}  --------  ------"]
        lines += [
            f"{o.label:<{width}}  {self._styled(o.state)}  {o.missing or _short(o.value)}"
            for o in outcomes
        ]
        self._say(f"Summary after {elapsed:.1f}s:")
        for line in lines:
            self._say(f"  {line}", prefix=False)

    def _styled(self, state: str) -> str:
        # Pad before colouring: escape codes would otherwise break the column widths.
        padded = f"{state:<8}"
        return self.style.SUCCESS(padded) if state == states.SUCCESS else self.style.ERROR(padded)

    def _say(self, text: str, prefix: bool = True) -> None:
        """Write a line and flush, so it interleaves in order with the worker's log."""
        self.stdout.write(f"[demo] {text}" if prefix else text)
        self.stdout.flush()


def _maintenance(database: dict[str, Any]) -> psycopg.Connection[Any]:
    """An autocommit connection to the server's ``postgres`` maintenance database.

    CREATE and DROP DATABASE cannot run inside a transaction, nor on the database they
    name; every server has ``postgres``.
    """
    params = {
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
    }
    return psycopg.connect(
        dbname="postgres", autocommit=True, **{k: v for k, v in params.items() if v}
    )


def drop_database(database: dict[str, Any]) -> bool:
    """Drop the database described by a ``DATABASES`` entry; return whether it existed."""
    with _maintenance(database) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]
        ).fetchone()
        # FORCE: a worker left running by an interrupted demo must not keep it alive.
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(database["NAME"])
            )
        )
    return exists is not None


def create_database_if_missing(database: dict[str, Any]) -> bool:
    """Create the database described by a ``DATABASES`` entry; return whether it was new."""
    with _maintenance(database) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]
        ).fetchone()
        if exists:
            return False
        try:
            connection.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"]))
            )
        except errors.DuplicateDatabase:
            # Another process created it between the look and the CREATE.
            return False
    return True


def wait_for(job: Sent, worker: subprocess.Popen[bytes], deadline: float) -> Outcome:
    """Wait until ``job`` is finished, the deadline passes, or the worker dies."""
    while True:
        left = deadline - time.monotonic()
        try:
            # Short waits, so that a worker that died is noticed quickly.
            value = job.result.get(timeout=max(0.0, min(left, 1.0)), propagate=False)
        except exceptions.TimeoutError:
            if worker.poll() is not None:
                return Outcome(job.label, job.result.state, None, "(the worker exited)")
            if left <= 0:
                return Outcome(job.label, job.result.state, None, "(did not finish in time)")
            continue
        return Outcome(job.label, job.result.state, value)


def _short(value: Any) -> str:
    text = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else repr(value)
    return text if len(text) <= RESULT_WIDTH else text[: RESULT_WIDTH - 3] + "..."


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so that the worker is stopped on the way out."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
