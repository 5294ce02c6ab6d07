"""``manage.py djqueue result ID`` and ``call TASK ARGS``: one job from the terminal."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from djqueue.client.result import AsyncResult
from djqueue.core import conf, exceptions, ids, registry, states, text
from djqueue.core.exceptions import NotRegistered
from djqueue.db.models import Job
from djqueue.management.tables import pairs


def add_parsers(commands: Any) -> None:
    """The ``result`` and ``call`` sub-commands."""
    result = commands.add_parser("result", help="a job's state, result or error, and times")
    result.add_argument("job_id", metavar="ID")
    call = commands.add_parser("call", help="send a job of a registered task; print its id")
    call.add_argument("task", metavar="TASK", help="the task's registered name")
    # Not "args": Django's call_command takes an option of that name for itself.
    call.add_argument(
        "arguments",
        nargs="?",
        default=None,
        metavar="ARGS",
        help="positional arguments as a JSON array",
    )
    _call_options(call)


def _call_options(call: CommandParser) -> None:
    call.add_argument("--args", "-a", dest="args_option", default=None, metavar="JSON")
    call.add_argument("--kwargs", "-k", default=None, metavar="JSON", help="a JSON object")
    call.add_argument("--queue", "-Q", default=None)
    call.add_argument("--countdown", type=float, default=None, metavar="SECONDS")
    call.add_argument("--eta", default=None, metavar="ISO-TIME", help="such as 2030-01-01T09:00Z")
    call.add_argument("--expires", type=float, default=None, metavar="SECONDS")
    call.add_argument("--priority", type=int, default=None)


def result(job_id: str) -> list[str]:
    """The lines that describe job ``job_id``."""
    try:
        found = AsyncResult(ids.parse(job_id))
        state = found.state
    except (ValueError, exceptions.JobNotFound) as exc:
        raise CommandError(str(exc)) from None
    job = Job.objects.using(conf.database()).get(pk=found.id)
    runtime = (
        f"{(job.finished_at - job.started_at).total_seconds():.3f}s"
        if job.finished_at and job.started_at
        else None
    )
    rows: list[tuple[str, object]] = [
        ("id", job.id),
        ("task", job.task_name),
        ("state", state),
        ("queue", job.queue),
        ("priority", job.priority),
        ("worker", job.worker),
        ("attempts", f"{job.attempt} (retries {job.retries})"),
        ("args", _json(job.args)),
        ("kwargs", _json(job.kwargs)),
        ("sent", _time(job.enqueued_at)),
        ("eta", _time(job.eta)),
        ("expires", _time(job.expires_at)),
        ("started", _time(job.started_at)),
        ("finished", _time(job.finished_at)),
        ("runtime", runtime),
    ]
    if job.state == states.SUCCESS:
        rows.append(("result", _json(job.result)))
    elif job.error_type or job.error_message:
        rows.append(("error", f"{job.error_type}: {job.error_message}"))
    lines = pairs(rows)
    if job.traceback:
        lines.append("traceback:")
        shown = text.printable(job.traceback.rstrip(), one_line=False)
        lines.extend(f"  {line}" for line in shown.splitlines())
    return lines


def call(options: dict[str, Any]) -> str:
    """Send a job as ``options`` say; return its id."""
    try:
        task = registry.get(options["task"])
    except NotRegistered as exc:
        raise CommandError(str(exc)) from None
    if options["arguments"] is not None and options["args_option"] is not None:
        raise CommandError("give the arguments once: as ARGS or as --args, not both")
    given = options["arguments"] or options["args_option"] or "[]"
    args = _parsed(given, list, "ARGS", "[2, 2]")
    kwargs = _parsed(options["kwargs"] or "{}", dict, "--kwargs", '{"x": 1}')
    sending: dict[str, Any] = {
        name: options[name]
        for name in ("queue", "countdown", "expires", "priority")
        if options[name] is not None
    }
    if options["eta"] is not None:
        sending["eta"] = _moment(options["eta"])
    try:
        sent = task.apply_async(args, kwargs, **sending)
    except (TypeError, ValueError) as exc:
        raise CommandError(f"cannot send {task.name}: {exc}") from None
    return str(sent.id)


def _parsed(given: str, kind: type, label: str, example: str) -> Any:
    try:
        value = json.loads(given)
    except ValueError as exc:
        raise CommandError(f"{label} is not JSON ({exc}); give one such as '{example}'") from None
    if not isinstance(value, kind):
        what = "an array" if kind is list else "an object"
        raise CommandError(f"{label} must be {what} in JSON, such as '{example}'")
    return value


def _moment(given: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(given)
    except ValueError:
        raise CommandError(
            f"--eta {given!r} is not an ISO time; give one such as 2030-01-01T09:00:00+00:00"
        ) from None
    if moment.tzinfo is None:
        raise CommandError(f"--eta {given!r} has no time zone; add one, such as +00:00 or Z")
    return moment


def _json(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _time(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")
