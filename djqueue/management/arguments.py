"""The subcommands of ``manage.py djqueue`` and their options, declared in one place so
that its ``--help`` reads as one page."""

from __future__ import annotations

from django.core.management.base import CommandParser

from djqueue.management import beat_import, calls, queue_limits

# Read from the jobs' rows (every held job, also of workers that stopped answering).
JOB_LISTS = ["active", "reserved", "scheduled", "revoked"]
# Asked of the live workers, or read from their rows (djqueue.control.inspect).
WORKER_REPORTS = ["ping", "stats", "registered", "active_queues"]
# manage.py djqueue control COMMAND: the commands of djqueue.control that change workers.
CONTROL_COMMANDS = ["rate_limit", "pool_grow", "pool_shrink", "shutdown"]


def declare(parser: CommandParser) -> None:
    """The subcommands of ``manage.py djqueue`` and their options."""
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    commands.add_parser("status", help="workers and queues at a glance")
    inspect = commands.add_parser(
        "inspect",
        help="list jobs (active, reserved, scheduled, revoked), ask the workers (ping, "
        "stats, registered, active_queues), or task figures (task-stats)",
    )
    inspect.add_argument("what", choices=[*JOB_LISTS, *WORKER_REPORTS, "task-stats"])
    inspect.add_argument("--queue", "-Q", default=None, help="only this queue")
    _worker_options(inspect)
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
    revoke.add_argument("--terminate", action="store_true", help="also stop jobs that are running")
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
    queue_limits.add_parser(commands)
    commands.add_parser("roles", help="make the console's groups: djqueue operator, djqueue admin")
    prune = commands.add_parser("prune", help="delete old finished jobs")
    prune.add_argument(
        "--older-than",
        type=float,
        default=None,
        help="seconds since finishing (default: RESULT_RETENTION_SECONDS)",
    )

    beat_import.add_parser(commands)


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
