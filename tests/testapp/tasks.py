"""Tasks the test suite sends; workers started by acceptance tests run them."""

from __future__ import annotations

import datetime
import decimal
import json
import os
import time
import uuid
from typing import Any

import djqueue
from djqueue.core import signals


@djqueue.task
def add(x: int, y: int) -> int:
    return x + y


@djqueue.task
def noop() -> None:
    return None


@djqueue.task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@djqueue.task
def typed_roundtrip(
    when: datetime.datetime,
    day: datetime.date,
    at: datetime.time,
    amount: decimal.Decimal,
    ref: uuid.UUID,
) -> list[Any]:
    assert isinstance(when, datetime.datetime) and isinstance(amount, decimal.Decimal)
    return [when, day, at, amount, ref]


@djqueue.task
def fail(message: str = "boom") -> None:
    raise ValueError(message)


class CustomError(Exception):
    pass


@djqueue.task
def fail_custom() -> None:
    raise CustomError("not rebuildable")


@djqueue.task(bind=True, max_retries=2, default_retry_delay=0)
def retry_then_succeed(self: djqueue.Task[Any, Any], succeed_on: int) -> int:
    if self.request.retries < succeed_on:
        raise self.retry(exc=ConnectionError(f"try {self.request.retries}"))
    return self.request.retries


@djqueue.task(
    autoretry_for=(ConnectionError,),
    max_retries=2,
    retry_backoff=True,
    retry_jitter=False,
    retry_backoff_max=0,
)
def always_flaky() -> None:
    raise ConnectionError("service down")


@djqueue.task(bind=True)
def whoami(self: djqueue.Task[Any, Any]) -> dict[str, Any]:
    request = self.request
    return {
        "id": str(request.id),
        "retries": request.retries,
        "queue": request.queue,
        "args": list(request.args),
        "hostname": request.hostname,
    }


@djqueue.task(ignore_result=True)
def forgetful() -> str:
    return "not kept"


@djqueue.task(name="custom.name", queue="special", priority=5)
def named() -> str:
    return "named"


@djqueue.task
def unencodable_result() -> Any:
    return {1, 2, 3}


@djqueue.task
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@djqueue.task
def record_pid(tag: str) -> int:
    """Return the pid of the process that ran the job (acceptance tests count runs)."""
    return os.getpid()


@djqueue.task(max_retries=None)
def sleep_unlimited(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@djqueue.task(bind=True)
def record_run(self: djqueue.Task[Any, Any]) -> int:
    """Write one row per execution to ``acceptance_run`` (acceptance tests count runs)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO acceptance_run (job_id, attempt, pid) VALUES (%s, %s, %s)",
            [self.request.id, self.request.attempt, os.getpid()],
        )
    return os.getpid()


@djqueue.task
def sleep_then_pid(seconds: float) -> int:
    """Sleep, then return the pid that ran the job (tells attempts of one job apart)."""
    time.sleep(seconds)
    return os.getpid()


@djqueue.task
def exit_abruptly(code: int = 3) -> None:
    """Raise ``SystemExit`` inside a job, as a task calling ``sys.exit()`` would."""
    raise SystemExit(code)


@djqueue.task(bind=True)
def database_sleep(self: djqueue.Task[Any, Any], seconds: float) -> str:
    """Hold a query on the server for ``seconds``, then read this job's state via the ORM."""
    from django.db import connection

    from djqueue.db.models import Job

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return Job.objects.get(id=self.request.id).state


# Limits and unique jobs (tests/integration/test_limits.py, test_unique.py,
# tests/acceptance/test_limits.py).


@djqueue.task(rate_limit="5/s", max_retries=None)
def rate_limited(tag: int) -> int:
    """At most 5 starts per second across all workers."""
    return tag


@djqueue.task(concurrency_limit=1, max_retries=None)
def one_at_a_time(seconds: float) -> float:
    """Never two running at once, cluster-wide."""
    time.sleep(seconds)
    return seconds


@djqueue.task(concurrency_limit=2, concurrency_key=lambda account, seconds=0.0: str(account))
def per_account(account: int, seconds: float = 0.0) -> int:
    """At most two running at once per account."""
    time.sleep(seconds)
    return account


@djqueue.task(rate_limit="2/m", concurrency_limit=1)
def doubly_limited(tag: int) -> int:
    return tag


@djqueue.task(rate_limit="2/m")
def twice_a_minute(tag: int) -> int:
    """At most two starts per minute (the console's "why waiting" tests)."""
    return tag


@djqueue.task(unique_key="report:{user_id}")
def unique_report(user_id: int, full: bool = False) -> int:
    return user_id


@djqueue.task(unique_key=lambda user_id, **kwargs: f"sync:{user_id}", unique_for=1)
def unique_for_a_second(user_id: int, **kwargs: Any) -> int:
    return user_id


@djqueue.task(unique_for=60)
def unique_call(x: int) -> int:
    return x


@djqueue.task(rate_limit="5/s", max_retries=None)
def rate_limited_nap(seconds: float) -> float:
    """At most 5 starts per second across all workers; each run takes ``seconds``."""
    time.sleep(seconds)
    return seconds


# Time limits and revocation of running jobs.
def _spin(seconds: float) -> None:
    """Busy Python code: an exception raised into the thread lands at once."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@djqueue.task
def spin(seconds: float) -> float:
    _spin(seconds)
    return seconds


@djqueue.task(time_limit=2)
def spin_forever() -> None:
    while True:
        pass


@djqueue.task(soft_time_limit=1, time_limit=10)
def clean_up_on_soft_limit(seconds: float) -> str:
    from djqueue.core.exceptions import SoftTimeLimitExceeded

    try:
        _spin(seconds)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "finished"


@djqueue.task(soft_time_limit=1, time_limit=10)
def sleep_through_soft_limit(seconds: float) -> str:
    """Blocked in a C call: in a prefork child the signal interrupts the sleep."""
    from djqueue.core.exceptions import SoftTimeLimitExceeded

    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "finished"


@djqueue.task
def clean_up_when_asked(seconds: float) -> str:
    """No time limit: SoftTimeLimitExceeded comes only from revoke(signal="SIGUSR1")."""
    from djqueue.core.exceptions import SoftTimeLimitExceeded

    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "finished"


@djqueue.task
def hold_on_sigterm(marker: str, seconds: float) -> str:
    """Handles SIGTERM itself, notes it in ``marker`` and goes on (as a task that cleans
    up and then carries on would): only a SIGKILL stops it."""
    import signal

    def noted(signum: int, frame: Any) -> None:
        with open(marker, "a", encoding="utf-8") as out:
            out.write(f"{signal.Signals(signum).name}\n")

    signal.signal(signal.SIGTERM, noted)
    with open(marker, "a", encoding="utf-8") as out:
        out.write("started\n")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "finished"


# Tasks written with Django's own Tasks framework (Django 6.0+), run by djqueue through
# djqueue.backends.DjqueueBackend (see TASKS in tests/settings.py).
try:
    from django.tasks import task as django_task
except ImportError:  # Django 5.2
    django_task = None

if django_task is not None:

    @django_task
    def django_add(x: int, y: int) -> int:
        return x + y

    @django_task(takes_context=True, priority=10, queue_name="django")
    def django_attempt(context: Any, label: str) -> dict[str, Any]:
        return {"label": label, "attempt": context.attempt, "id": context.task_result.id}

    @django_task
    def django_fail() -> None:
        raise KeyError("missing")


# Worker signals, logged so that acceptance tests can see them in a worker's log.
def _log_worker_signal(sender: Any, signal: Any = None, **kwargs: Any) -> None:
    import logging

    name = "worker_ready" if signal is signals.worker_ready else "worker_shutdown"
    logging.getLogger("djqueue.worker").info("signal %s from %s", name, sender.name)


signals.worker_ready.connect(_log_worker_signal, weak=False)
signals.worker_shutdown.connect(_log_worker_signal, weak=False)


# Every signal, written as one JSON line per send to the file DJQUEUE_TEST_SIGNAL_LOG
# names (when it is set), by whichever process sends it; with DJQUEUE_TEST_SIGNAL_RAISE
# set, a second receiver of every signal raises, which must change nothing.
def _record_signal(sender: Any, signal: Any = None, **kwargs: Any) -> None:
    path = os.environ.get("DJQUEUE_TEST_SIGNAL_LOG")
    if not path:
        return
    name = next(n for n in signals.NAMES if getattr(signals, n) is signal)
    line = {"signal": name, "pid": os.getpid(), "sender": _described(sender)}
    for key, value in kwargs.items():
        line[key] = _described(value)
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")


def _described(value: Any) -> Any:
    """What a test can compare: plain values as they are, objects by a short name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        # Marked, so that a test sees an id that is not a str (as Celery's ids are).
        return f"uuid:{value}"
    if isinstance(value, list | tuple):
        return [_described(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _described(item) for key, item in value.items()}
    if isinstance(value, djqueue.Task):
        return f"task:{value.name}"
    if isinstance(value, BaseException):
        return f"exception:{type(value).__name__}"
    if hasattr(value, "tb_frame"):
        return "traceback"
    if hasattr(value, "exception") and hasattr(value, "traceback"):
        return f"einfo:{type(value.exception).__name__}"
    if hasattr(value, "retries") and hasattr(value, "hostname"):
        return {"request": _described(value.id), "task": value.task, "hostname": value.hostname}
    return f"object:{type(value).__name__}"


def _raise_in_receiver(sender: Any, **kwargs: Any) -> None:
    if os.environ.get("DJQUEUE_TEST_SIGNAL_RAISE"):
        raise RuntimeError("a receiver that fails")


for _name in signals.NAMES:
    getattr(signals, _name).connect(_record_signal, weak=False, dispatch_uid=f"record-{_name}")
    getattr(signals, _name).connect(_raise_in_receiver, weak=False, dispatch_uid=f"raise-{_name}")


@djqueue.task(bind=True)
def with_progress(self: djqueue.Task[Any, Any], steps: int, pause: float = 0.0) -> int:
    for step in range(1, steps + 1):
        time.sleep(pause)
        self.update_progress(step, steps, f"step {step}")
    return steps


@djqueue.task(max_retries=0)
def fail_until_marker(marker: str) -> str:
    """Fails until the file ``marker`` exists (a job to retry from the admin)."""
    if not os.path.exists(marker):
        raise RuntimeError(f"{marker} does not exist yet")
    return "done"


# Async tasks: run on the worker process's event loop.
@djqueue.task
async def async_add(x: int, y: int) -> int:
    import asyncio

    await asyncio.sleep(0)
    return x + y


@djqueue.task
async def async_nap(seconds: float) -> float:
    import asyncio

    await asyncio.sleep(seconds)
    return seconds


@djqueue.task
async def async_gather(count: int) -> int:
    """``count`` concurrent one-second sleeps: a few seconds, not ``count``."""
    import asyncio

    await asyncio.gather(*(asyncio.sleep(1) for _ in range(count)))
    return count


@djqueue.task(bind=True)
async def async_whoami(self: djqueue.Task[Any, Any]) -> str:
    return str(self.request.id)


@djqueue.task(bind=True, max_retries=1, default_retry_delay=0)
async def async_retry_once(self: djqueue.Task[Any, Any]) -> int:
    if self.request.retries == 0:
        raise self.retry(exc=ConnectionError("first try"))
    return self.request.retries


# Workflows (docs/canvas.md): the tasks of Celery's canvas examples. -----------------


@djqueue.task
def mul(x: int, y: int) -> int:
    return x * y


@djqueue.task
def xsum(numbers: list[int]) -> int:
    return sum(numbers)


@djqueue.task
def show(value: Any) -> str:
    return f"result: {value}"


@djqueue.task
def thumbnail(name: str) -> str:
    """Pretend to make a thumbnail; return its file name."""
    return f"thumbs/{name}.jpg"


@djqueue.task
def index_thumbnails(paths: list[str]) -> dict[str, Any]:
    """The chord body of the thumbnail example: index every thumbnail made."""
    return {"count": len(paths), "first": paths[0] if paths else None}


@djqueue.task
def on_chain_error(task_id: str) -> str:
    """An errback: read the failed job's error through its id, as Celery's old style."""
    error = djqueue.AsyncResult(task_id).result  # get() would raise inside a task
    return f"{task_id} failed: {type(error).__name__}: {error}"


@djqueue.task(bind=True)
def record_chord_body(self: djqueue.Task[Any, Any], results: list[Any]) -> int:
    """A chord body that writes one row per run to ``acceptance_run`` (counted by tests)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO acceptance_run (job_id, attempt, pid) VALUES (%s, %s, %s)",
            [self.request.id, self.request.attempt, os.getpid()],
        )
    return len(results)


# The chaos suite (tests/chaos): a job that records every execution, and poison jobs. --


def _record_execution(request: Any) -> None:
    """Write one row to ``chaos_run``: this job, this attempt, this worker and process."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chaos_run (job_id, attempt, worker, pid) VALUES (%s, %s, %s, %s)",
            [request.id, request.attempt, request.hostname, os.getpid()],
        )


@djqueue.task(bind=True, max_retries=None)
def chaos_record(self: djqueue.Task[Any, Any], seconds: float = 0.0) -> int:
    """Record this execution in ``chaos_run``, then sleep ``seconds``.

    The chaos suite cuts the database away from workers: a run whose row could not be
    written is retried as a new attempt rather than failed, so that only the queue
    itself can lose a job.
    """
    from django.db import DatabaseError, connection

    try:
        _record_execution(self.request)
    except DatabaseError as exc:
        # The connection may be half dead: the next attempt opens a fresh one.
        connection.close()
        raise self.retry(exc=exc, countdown=0.2) from exc
    time.sleep(seconds)
    return os.getpid()


@djqueue.task(bind=True)
def chaos_innocent(self: djqueue.Task[Any, Any]) -> int:
    """Record this execution in ``chaos_run``; default retries, so that a job that loses
    its attempts to its neighbours' crashes fails and is counted."""
    _record_execution(self.request)
    return os.getpid()


@djqueue.task
def poison_nul_message() -> None:
    """Fail with a NUL character in the error message (PostgreSQL text cannot hold it)."""
    raise ValueError("poison: a NUL \x00 in the message")


@djqueue.task
def poison_surrogate_message() -> None:
    """Fail with a lone surrogate in the error message."""
    raise ValueError("poison: a lone surrogate \udc80 in the message")


@djqueue.task
def poison_surrogate_result() -> str:
    """Return a string with a lone surrogate (JSON in PostgreSQL cannot hold it)."""
    return "poison: a lone surrogate \udc80 in the result"


@djqueue.task
def poison_huge_result(size: int) -> str:
    """Return a string of ``size`` characters (above MAX_PAYLOAD_BYTES when asked to)."""
    return "x" * size


def _no_core_file() -> None:
    """A process about to crash on purpose leaves no core file behind."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@djqueue.task(bind=True)
def poison_abort(self: djqueue.Task[Any, Any]) -> None:
    """Record this execution, then end the process with ``os.abort()`` (SIGABRT)."""
    _record_execution(self.request)
    _no_core_file()
    os.abort()


@djqueue.task(bind=True)
def poison_segfault(self: djqueue.Task[Any, Any]) -> None:
    """Record this execution, then read address 0 (SIGSEGV)."""
    import ctypes

    _record_execution(self.request)
    _no_core_file()
    ctypes.string_at(0)


# Poison: jobs whose data or behaviour once took their worker down ---------------------


@djqueue.task
def raise_unstorable(kind: str) -> None:
    """Fail with a message PostgreSQL cannot store as text (a NUL byte, a lone surrogate)."""
    text = {"nul": "bad \x00 byte", "surrogate": "bad \udc80 byte"}[kind]
    raise ValueError(f"{text} in a message")


@djqueue.task
def return_unstorable() -> str:
    return "half a pair: \udc80"


@djqueue.task
def return_marked(marker: str) -> str:
    """Succeed with ``marker`` (a test's trigger may refuse to store it)."""
    return marker


@djqueue.task(max_retries=5)
def abort_process() -> None:
    """Kill the process running it, as a crash in a C extension would."""
    _no_core_file()
    os.abort()


# The task API as Celery code uses it (docs/tasks.md): hooks of a base class, Reject,
# Ignore, throws, retry_kwargs. Hooks log what they got, so that tests read it in the
# worker's log (or in the caplog of an eager run).


def _say(*parts: Any) -> None:
    import logging

    logging.getLogger("djqueue.worker").info("hook %s", " ".join(str(part) for part in parts))


class Hooked(djqueue.Task[Any, Any]):
    def before_start(self, task_id: Any, args: Any, kwargs: Any) -> None:
        _say("before_start", task_id, list(args), kwargs)

    def on_success(self, retval: Any, task_id: Any, args: Any, kwargs: Any) -> None:
        _say("on_success", retval, task_id, list(args), kwargs)

    def on_failure(
        self, exc: BaseException, task_id: Any, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        _say("on_failure", repr(exc), task_id, list(args), "KeyError" in str(einfo))

    def on_retry(self, exc: Any, task_id: Any, args: Any, kwargs: Any, einfo: Any) -> None:
        _say("on_retry", repr(exc), task_id, list(args), type(einfo.exception).__name__)

    def after_return(
        self, status: str, retval: Any, task_id: Any, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        _say("after_return", status, repr(retval), task_id, einfo)


class PatientTask(djqueue.Task[Any, Any]):
    """Options set on a base class are the defaults of the tasks made with it."""

    max_retries = 5
    default_retry_delay = 0


@djqueue.task(base=Hooked, bind=True, max_retries=1, default_retry_delay=0)
def hooked(self: djqueue.Task[Any, Any], action: str) -> str:
    if action == "fail":
        raise KeyError("boom")
    if action == "retry" and self.request.retries == 0:
        raise self.retry(exc=ConnectionError("again"))
    return action


@djqueue.task(base=PatientTask, bind=True)
def patient(self: djqueue.Task[Any, Any]) -> int:
    if self.request.retries < 4:
        raise self.retry()
    return self.request.retries


@djqueue.task(max_retries=2)
def reject(reason: str, requeue: bool = False) -> None:
    from djqueue.exceptions import Reject

    raise Reject(reason, requeue=requeue)


@djqueue.task(bind=True)
def ignore(self: djqueue.Task[Any, Any], state: str = "") -> None:
    from djqueue.exceptions import Ignore

    if state:
        self.update_state(state=state, meta={"why": "ignored on purpose"})
    raise Ignore()


@djqueue.task(throws=(KeyError,))
def expected_failure(key: str) -> None:
    raise KeyError(key)


@djqueue.task(
    bind=True,
    max_retries=0,
    autoretry_for=(ConnectionError,),
    retry_kwargs={"max_retries": 2, "countdown": 0},
)
def autoretry_twice(self: djqueue.Task[Any, Any]) -> int:
    if self.request.retries < 2:
        raise ConnectionError(f"try {self.request.retries}")
    return self.request.retries


@djqueue.task(typing=False)
def untyped(x: int) -> Any:
    return x


@djqueue.task(bind=True)
def describe_request(self: djqueue.Task[Any, Any]) -> dict[str, Any]:
    """What ``self.request`` says, as JSON (tests compare it with what was sent)."""
    request = self.request
    return {
        # The ids as they are: strings, as Celery's, that JSON takes without str().
        "id": request.id,
        "ids_as_json": json.dumps([request.id, request.root_id, request.parent_id, request.group]),
        "task": request.task,
        "args": list(request.args),
        "kwargs": request.kwargs,
        "root_id": request.root_id,
        "parent_id": request.parent_id,
        "group": request.group,
        "chain": request.chain,
        "callbacks": request.callbacks,
        "errbacks": request.errbacks,
        "delivery_info": request.delivery_info,
        "hostname": request.hostname,
        "is_eager": request.is_eager,
        "retries": request.retries,
        "eta": request.eta,
        "expires": request.expires,
        "headers": request.headers,
        "tenant": request.get("tenant"),
        "shadow": request.shadow,
        "time_limit": request.time_limit,
        "soft_time_limit": request.soft_time_limit,
        "ignore_result": request.ignore_result,
    }


@djqueue.task(bind=True)
def send_child(self: djqueue.Task[Any, Any]) -> str:
    """Send ``describe_request`` from inside a task; return the child's id."""
    return describe_request.delay().id


# Results: waiting inside a task --------------------------------------------------------


@djqueue.task
def wait_for_sum(x: int, y: int) -> int:
    """Send a job and wait for it here: get() refuses, since it could deadlock the worker."""
    return add.delay(x, y).get(timeout=5)


@djqueue.task
def read_finished(job_id: str) -> Any:
    """Wait for a job known to be finished, having said that waiting here is intended."""
    return djqueue.AsyncResult(job_id).get(timeout=5, disable_sync_subtasks=False)


@djqueue.task
def read_allowed(job_id: str) -> Any:
    """The same inside ``allow_join_result()``."""
    with djqueue.result.allow_join_result():
        return djqueue.AsyncResult(job_id).get(timeout=5)


# Errbacks as Celery calls them ----------------------------------------------------------


@djqueue.task
def errback_with_request(request: Any, exc: BaseException, traceback: str | None) -> dict:
    """A new-style errback: Celery passes the failed task's request, error and traceback."""
    return {
        "id": request.id,
        "task": request.task,
        "args": list(request.args),
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback is not None and "Traceback" in traceback,
    }


@djqueue.task
def errback_with_request_and_tag(request: Any, exc: BaseException, traceback: Any, tag: str) -> str:
    """New-style with an argument of its own, given by the signature (after Celery's)."""
    return f"{tag}: {request.task} {type(exc).__name__}"


@djqueue.task(bind=True)
def bound_errback(self: Any, task_id: str) -> str:
    """Bound errbacks get the failed job's id whatever they take, as in Celery."""
    return f"bound: {task_id}"


@djqueue.task
def spawn_children(count: int) -> int:
    """Send ``count`` jobs from inside a task: they are its children."""
    for n in range(count):
        add.delay(n, n)
    return count


# The worker hosts suite (tests/hosts). ---------------------------------------------


@djqueue.task
def hold_advisory_lock(key: int, seconds: float) -> None:
    """Hold the advisory lock ``key`` in a transaction of the task's own connection for
    ``seconds``, as a task that updates a row and then waits on something does."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        time.sleep(seconds)
