"""``manage.py djqueue``: look at the queue and steer it from the command line."""

from __future__ import annotations

import contextlib
import datetime
import json
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from djqueue.client import control
from djqueue.core import conf, ids, signums, states, text
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import broker, roles, schema
from djqueue.db.models import Job
from djqueue.management import beat_import, calls, events, tables
from djqueue.ops import stats

LIST_LIMIT = 50
# Read from the jobs' rows (every held job, also of workers that stopped answering).
JOB_LISTS = ["active", "reserved", "scheduled", "revoked"]
# Asked of the live workers, or read from their rows (djqueue.control.inspect).
WORKER_REPORTS = ["ping", "stats", "registered", "active_queues"]
# manage.py djqueue control COMMAND: the commands of djqueue.control that change workers.
CONTROL_COMMANDS = ["rate_limit", "pool_grow", "pool_shrink", "shutdown"]


class Command(BaseCommand):
    help = (
        "Task queue operations: status, inspect, ping, result, call, events, control, revoke, "
        "retry, purge, pause, resume, prune, roles, import-beat."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        commands.add_parser("status", help="workers and queues at a glance")
        inspect = commands.add_parser(
            "inspect",
            help="list jobs (active, reserved, scheduled, revoked), ask the workers (ping, "
            "stats, registered, active_queues), or task figures (task-stats)",
        )
        inspect.add_argument("what", choices=[*JOB_LISTS, *WORKER_REPORTS, "task-stats"])
        inspect.add_argument("--queue", "-Q", default=None, help="only this queue")
        inspect.add_argument(
            "--destination",
            "-d",
            action="append",
            default=None,
            metavar="WORKER",
            help="only this worker (its -n name or full name; may be repeated)",
        )
        inspect.add_argument(
            "--timeout",
            "-t",
            type=float,
            default=1.0,
            metavar="SECONDS",
            help="how long to wait for the workers' replies (default 1)",
        )
        ping = commands.add_parser("ping", help="ask the live workers whether they answer")
        _worker_options(ping)
        calls.add_parsers(commands)
        events_parser = commands.add_parser(
            "events", help="a live tail of what the workers do (Ctrl-C to stop)"
        )
        events_parser.add_argument("--queue", "-Q", default=None, help="only this queue")
        events_parser.add_argument(
            "--count", "-n", type=int, default=None, help="stop after this many events"
        )
        events_parser.add_argument(
            "--timeout", type=float, default=None, metavar="SECONDS", help="stop after SECONDS"
        )
        remote = commands.add_parser(
            "control", help="change running workers: rate_limit, pool_grow, pool_shrink, shutdown"
        )
        remote.add_argument("command", choices=CONTROL_COMMANDS)
        remote.add_argument(
            "values",
            nargs="*",
            metavar="ARG",
            help="rate_limit: TASK RATE (10/s, 100/m, 0 for none); pool_grow, pool_shrink: N",
        )
        _worker_options(remote)
        revoke = commands.add_parser(
            "revoke",
            help="make jobs that have not started never run (--terminate: stop running ones too)",
        )
        revoke.add_argument("job_ids", nargs="+", metavar="ID")
        revoke.add_argument(
            "--terminate", action="store_true", help="also stop jobs that are running"
        )
        revoke.add_argument(
            "--signal",
            "-s",
            default=None,
            metavar="SIGNAL",
            help="with --terminate: the signal a prefork worker sends to the job's process "
            "(SIGTERM, SIGUSR1, ...; default SIGKILL)",
        )
        retry = commands.add_parser("retry", help="queue failed jobs again (--failed)")
        retry.add_argument(
            "--failed", action="store_true", required=True, help="the failed jobs (required)"
        )
        retry.add_argument("--task", default=None, help="only jobs of this task")
        retry.add_argument("--queue", "-Q", default=None, help="only jobs of this queue")
        retry.add_argument(
            "--since",
            type=float,
            default=None,
            metavar="SECONDS",
            help="only jobs that failed within the last SECONDS",
        )
        purge = commands.add_parser("purge", help="delete the waiting jobs of a queue")
        purge.add_argument("--queue", "-Q", required=True, help="the queue to empty")
        purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        for name, verb in (("pause", "stop"), ("resume", "start again")):
            toggle = commands.add_parser(name, help=f"workers {verb} taking jobs from queues")
            toggle.add_argument("queues", nargs="+", metavar="QUEUE")
        commands.add_parser(
            "roles", help="make the console's groups: djqueue operator, djqueue admin"
        )
        prune = commands.add_parser("prune", help="delete old finished jobs")
        prune.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds since finishing (default: RESULT_RETENTION_SECONDS)",
        )

        beat_import.add_parser(commands)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with schema.translated():
                self._act(options)
        except MigrationsMissing as exc:
            raise CommandError(str(exc)) from None

    def _act(self, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "status":
            self._status()
        elif action == "inspect":
            self._inspect(options)
        elif action == "ping":
            self._worker_report("ping", options["destination"], options["timeout"])
        elif action == "result":
            self._write_lines(calls.result(options["job_id"]))
        elif action == "call":
            self.stdout.write(calls.call(options))
        elif action == "events":
            self._events(options)
        elif action == "control":
            self._control(options)
        elif action == "revoke":
            self._revoke(options["job_ids"], options["terminate"], options["signal"])
        elif action == "retry":
            self._retry(options["task"], options["queue"], options["since"])
        elif action == "purge":
            self._purge(options["queue"], options["yes"])
        elif action in ("pause", "resume"):
            for queue in options["queues"]:
                broker.set_paused(queue, action == "pause")
                self.stdout.write(f"{queue}: {'paused' if action == 'pause' else 'resumed'}")
        elif action == "prune":
            self._prune(options["older_than"])
        elif action == "roles":
            self._roles()
        elif action == "import-beat":
            beat_import.run(self.stdout, dry_run=options["dry_run"])

    # status ---------------------------------------------------------------------

    def _status(self) -> None:
        workers = stats.live_workers()
        self.stdout.write(f"Workers alive: {len(workers)}")
        for worker in workers:
            self.stdout.write(
                f"  {_shown(worker.name)}  pool={_shown(worker.pool)} "
                f"concurrency={worker.concurrency} queues={_shown(','.join(worker.queues))} "
                f"jobs_done={worker.jobs_done} heartbeat={_ago(worker.last_heartbeat)} ago"
            )
        depths = stats.queue_depths()
        self.stdout.write(f"Queues: {len(depths)}")
        for depth in depths:
            oldest = f"{depth.oldest_wait.total_seconds():.1f}s" if depth.oldest_wait else "-"
            self.stdout.write(
                f"  {_shown(depth.queue)}  waiting={depth.waiting} oldest={oldest} "
                f"scheduled={depth.scheduled} reserved={depth.reserved} running={depth.running}"
            )
        if not workers and any(depth.waiting for depth in depths):
            self.stderr.write("Jobs are waiting but no worker is alive: start `runworker`.")

    # inspect --------------------------------------------------------------------

    def _inspect(self, options: dict[str, Any]) -> None:
        what = options["what"]
        if what == "task-stats":
            self._task_stats()
            return
        if what in WORKER_REPORTS:
            self._worker_report(what, options["destination"], options["timeout"])
            return
        try:
            jobs = control.jobs(what, options["queue"], options["destination"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        shown = list(jobs[: LIST_LIMIT + 1])
        if not shown:
            self.stdout.write(f"No {what} jobs.")
            return
        headers, rows = _job_table(what, shown[:LIST_LIMIT])
        self._write_lines(tables.table(headers, rows))
        if len(shown) > LIST_LIMIT:
            self.stdout.write(f"(first {LIST_LIMIT} shown)")

    def _worker_report(self, what: str, destination: list[str] | None, timeout: float) -> None:
        try:
            inspect = control.inspect(destination=destination, timeout=timeout)
            replies = getattr(inspect, what)()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not replies:
            self.stderr.write("No live worker answered.")
            return
        rows: list[tuple[object, ...]] = []
        for worker, reply in sorted(replies.items()):
            if what == "ping":
                rows.append((worker, reply.get("ok", reply) if isinstance(reply, dict) else reply))
            elif what == "registered":
                rows.extend((worker, name) for name in reply or [])
            elif isinstance(reply, dict):
                rows.extend((worker, key, value) for key, value in _flat(reply))
            else:
                rows.extend((worker, _compact(item)) for item in reply or [])
        headers = {
            "ping": ("WORKER", "REPLY"),
            "registered": ("WORKER", "TASK"),
        }.get(
            what, ("WORKER", "KEY", "VALUE") if rows and len(rows[0]) == 3 else ("WORKER", "ITEM")
        )
        self._write_lines(tables.table(headers, rows))

    def _write_lines(self, lines: list[str]) -> None:
        for line in lines:
            self.stdout.write(line)

    def _task_stats(self) -> None:
        figures = stats.task_figures(1.0)
        if not figures:
            self.stdout.write("No job finished in the last hour.")
        for task in figures:
            self.stdout.write(
                f"{_shown(task.task_name)}  finished={task.finished} failed={task.failed} "
                f"({task.failure_rate:.0%}) runtime p50={_s(task.runtime_p50)} "
                f"p95={_s(task.runtime_p95)} wait p50={_s(task.wait_p50)} p95={_s(task.wait_p95)}"
            )

    # changes --------------------------------------------------------------------

    def _events(self, options: dict[str, Any]) -> None:
        count, timeout = options["count"], options["timeout"]
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1")
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout must be a positive number of seconds")

        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the tail, quietly
            events.tail(write, count, timeout, options["queue"])

    def _control(self, options: dict[str, Any]) -> None:
        command, values = options["command"], options["values"]
        wanted = {"rate_limit": 2, "pool_grow": 1, "pool_shrink": 1, "shutdown": 0}[command]
        if len(values) != wanted:
            usage = {
                "rate_limit": "TASK RATE (such as 100/m; 0 for no limit)",
                "pool_grow": "N (slots to add)",
                "pool_shrink": "N (slots to remove)",
                "shutdown": "no arguments",
            }[command]
            raise CommandError(f"control {command} takes {usage}")
        where: dict[str, Any] = {
            "destination": options["destination"],
            "reply": True,
            "timeout": options["timeout"],
        }
        try:
            if command == "rate_limit":
                replies = control.rate_limit(values[0], values[1], **where)
            elif command in ("pool_grow", "pool_shrink"):
                try:
                    n = int(values[0])
                except ValueError:
                    raise CommandError(f"N must be a whole number, not {values[0]!r}") from None
                replies = getattr(control, command)(n, **where)
            else:
                replies = control.shutdown(**where)
        except (ValueError, LookupError) as exc:
            raise CommandError(str(exc)) from None
        if not replies:
            self.stderr.write("No live worker answered.")
            return
        rows = [(worker, _compact(reply)) for each in replies for worker, reply in each.items()]
        self._write_lines(tables.table(("WORKER", "REPLY"), sorted(rows)))

    def _revoke(self, job_ids: list[str], terminate: bool, signal: str | None) -> None:
        try:
            signums.parse(signal)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for typed in job_ids:
            try:
                job_id = ids.parse(typed)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            before = _state(job_id)
            control.revoke(job_id, terminate=terminate, signal=signal)
            state, asked = _state(job_id), _stop_asked(job_id)
            if state == states.REVOKED and before != states.REVOKED:
                self.stdout.write(f"{job_id}: revoked")
            elif terminate and asked and state == states.STARTED:
                self.stdout.write(f"{job_id}: asked to stop")
            else:
                why = "no such job" if state is None else f"it is {state}"
                hint = "; add --terminate to stop it" if state == states.STARTED else ""
                self.stdout.write(f"{job_id}: not revoked ({why}{hint})")

    def _retry(self, task: str | None, queue: str | None, since: float | None) -> None:
        failed = Job.objects.using(conf.database()).filter(state=states.FAILURE)
        if task:
            failed = failed.filter(task_name=task)
        if queue:
            failed = failed.filter(queue=queue)
        if since is not None:
            failed = failed.filter(
                finished_at__gte=timezone.now() - datetime.timedelta(seconds=since)
            )
        count = broker.retry_failed(list(failed.values_list("id", flat=True)))
        self.stdout.write(f"Queued {count} failed job(s) again.")

    def _purge(self, queue: str, yes: bool) -> None:
        waiting = (
            Job.objects.using(conf.database()).filter(queue=queue, state__in=states.WAITING).count()
        )
        if not waiting:
            self.stdout.write(f"Queue {queue!r} has no waiting jobs.")
            return
        if not yes:
            answer = input(f"Delete {waiting} waiting job(s) of queue {queue!r}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing deleted.")
        self.stdout.write(f"Deleted {broker.purge(queue)} waiting job(s) of queue {queue!r}.")

    def _prune(self, older_than: float | None) -> None:
        call_command("prunejobs", older_than=older_than, stdout=self.stdout)

    def _roles(self) -> None:
        try:
            made = roles.install()
        except roles.PermissionsMissing as exc:
            raise CommandError(str(exc)) from None
        for role in made:
            verb = "made" if role.created else "brought up to date"
            self.stdout.write(f"{role.name}: {verb}, {len(role.permissions)} permission(s)")
        self.stdout.write("Add users to these groups (and tick 'staff status') to give a role.")


def _worker_options(parser: CommandParser) -> None:
    parser.add_argument(
        "--destination",
        "-d",
        action="append",
        default=None,
        metavar="WORKER",
        help="only this worker (its -n name or full name; may be repeated)",
    )
    parser.add_argument(
        "--timeout",
        "-t",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long to wait for the workers' replies (default 1)",
    )


def _job_table(what: str, jobs: list[Job]) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    """The columns of a job list (inspect active, reserved, scheduled, revoked)."""
    if what == "active":
        return ("ID", "TASK", "QUEUE", "WORKER", "RUNNING FOR"), [
            (
                job.id,
                job.task_name,
                job.queue,
                job.worker,
                _ago(job.started_at) if job.started_at else "?",
            )
            for job in jobs
        ]
    if what == "reserved":
        return ("ID", "TASK", "QUEUE", "HELD BY"), [
            (job.id, job.task_name, job.queue, job.worker) for job in jobs
        ]
    if what == "revoked":
        return ("ID", "TASK", "QUEUE", "WHY"), [
            (job.id, job.task_name, job.queue, job.error_message) for job in jobs
        ]
    return ("ID", "TASK", "QUEUE", "ETA"), [
        (job.id, job.task_name, job.queue, job.eta.isoformat(timespec="seconds")) for job in jobs
    ]


def _flat(reply: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A nested reply (stats) as ``(dotted.key, value)`` rows."""
    rows: list[tuple[str, str]] = []
    for key, value in sorted(reply.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(_flat(value, f"{name}."))
        else:
            rows.append((name, _compact(value)))
    return rows


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def _state(job_id: Any) -> str | None:
    jobs = Job.objects.using(conf.database()).filter(pk=job_id)
    return jobs.values_list("state", flat=True).first()


def _stop_asked(job_id: Any) -> bool:
    jobs = Job.objects.using(conf.database()).filter(pk=job_id)
    return jobs.filter(revoke_requested_at__isnull=False).exists()


def _shown(name: str) -> str:
    """A name from a row as it may reach a terminal: with control characters escaped,
    so that an escape sequence in it is shown, not run."""
    return text.printable(name)


def _ago(moment: datetime.datetime) -> str:
    return f"{(timezone.now() - moment).total_seconds():.1f}s"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"
