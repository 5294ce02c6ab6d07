"""``manage.py djqueue``: look at the queue and steer it from the command line."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from djqueue.client import control
from djqueue.core import conf, ids, signums, states, text
from djqueue.core.exceptions import MigrationsMissing
from djqueue.db import broker, horizon, roles, schema
from djqueue.db.models import Job
from djqueue.management import arguments, beat_import, calls, events, queue_limits, tables
from djqueue.ops import stats

LIST_LIMIT = 50


# A transaction older than this, holding a snapshot in the queue's database, is named by
# ``status``: the longer it lasts, the more each claim has to read (docs/scaling.md#size).
HELD_SNAPSHOT_SECONDS = 60.0


class Command(BaseCommand):
    help = (
        "Task queue operations: status, inspect, ping, result, call, events, control, revoke, "
        "retry, purge, pause, resume, queue-limit, prune, roles, import-beat."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        arguments.declare(parser)

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
        elif action == "queue-limit":
            self.stdout.write(
                queue_limits.run(options["queue"], options["concurrency"], options["rate"])
            )
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
                f"jobs_done={worker.jobs_done} heartbeat={tables.ago(worker.last_heartbeat)} ago"
            )
        depths = stats.queue_depths()
        paused, limited = stats.paused_queues(), queue_limits.limited()
        self.stdout.write(f"Queues: {len(depths)}")
        for depth in depths:
            oldest = f"{depth.oldest_wait.total_seconds():.1f}s" if depth.oldest_wait else "-"
            # What holds a queue's jobs back, as the queues page flags it.
            held = " paused" if depth.queue in paused else ""
            if depth.queue in limited:
                held += f" limits={limited[depth.queue]}"
            self.stdout.write(
                f"  {_shown(depth.queue)}  waiting={depth.waiting} oldest={oldest} "
                f"scheduled={depth.scheduled} reserved={depth.reserved} running={depth.running}"
                f"{held}"
            )
        if not workers and any(depth.waiting for depth in depths):
            self.stderr.write("Jobs are waiting but no worker is alive: start `runworker`.")
        holder = horizon.oldest(HELD_SNAPSHOT_SECONDS)
        if holder is not None:
            self.stderr.write(
                f"A transaction has held back vacuum for {holder.seconds:.0f}s (pid "
                f"{holder.pid}, application {_shown(holder.application) or '-'}, "
                f"{_shown(holder.state)}): claims slow down until it ends "
                "(docs/scaling.md#size)."
            )

    # inspect --------------------------------------------------------------------

    def _inspect(self, options: dict[str, Any]) -> None:
        what = options["what"]
        if what == "task-stats":
            self._task_stats()
            return
        if what in arguments.WORKER_REPORTS:
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
        headers, rows = tables.job_table(what, shown[:LIST_LIMIT])
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
                rows.extend((worker, key, value) for key, value in tables.flat(reply))
            else:
                rows.extend((worker, tables.compact(item)) for item in reply or [])
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
                f"({task.failure_rate:.0%}) runtime p50={tables.seconds(task.runtime_p50)} "
                f"p95={tables.seconds(task.runtime_p95)} "
                f"wait p50={tables.seconds(task.wait_p50)} p95={tables.seconds(task.wait_p95)}"
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
        rows = [
            (worker, tables.compact(reply)) for each in replies for worker, reply in each.items()
        ]
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
