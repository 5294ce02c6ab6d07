"""``manage.py djqueue`` against a real worker: ping, inspect, call, result, events and
control, as an operator at a terminal would use them."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections

from djqueue.db.models import Job, Worker
from tests.acceptance.conftest import Workers, wait_until
from tests.testapp import tasks


def run(*args: str) -> str:
    out = StringIO()
    call_command("djqueue", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _rows(output: str) -> list[list[str]]:
    """The rows of a table, without its header, each split into its cells."""
    return [line.split() for line in output.splitlines()[1:]]


@pytest.mark.django_db(transaction=True)
def test_ping_inspect_call_result_and_control_with_a_live_worker(workers: Workers) -> None:
    worker = workers.start("-P", "threads", "-c", "2")
    name = wait_until(
        lambda: Worker.objects.filter(name__startswith=worker.name_prefix).first(), 15, "its row"
    ).name

    assert _rows(run("ping", "-t", "20")) == [[name, "pong"]]
    registered = run("inspect", "registered", "-t", "20")
    assert [name, tasks.add.name] in _rows(registered)
    stats = _rows(run("inspect", "stats", "-t", "20"))
    assert [name, "pool.implementation", "threads"] in stats

    job_id = run("call", tasks.add.name, "[20, 22]").strip()
    wait_until(lambda: Job.objects.filter(id=job_id, state="SUCCESS").exists(), 20, "the job")
    shown = dict(line.split(None, 1) for line in run("result", job_id).splitlines())
    assert (shown["state"], shown["result"], shown["worker"]) == ("SUCCESS", "42", name)

    grown = run("control", "pool_grow", "2", "-t", "20")
    assert _rows(grown) == [[name, '{"ok":', '"pool', "will", 'grow",', '"size":', "4}"]]
    limited = run("control", "rate_limit", tasks.add.name, "100/m", "-t", "20")
    assert _rows(limited) == [[name, '{"ok":', '"new', "rate", "limit", "set", 'successfully"}']]
    run("control", "shutdown", "-d", name, "-t", "20")
    assert worker.wait_exit(timeout=20) == 0


def _tail(out: StringIO, *args: str) -> threading.Thread:
    """``djqueue events`` in a thread of its own, writing to ``out``; started once it
    listens (its header is out)."""

    def follow() -> None:
        try:
            call_command("djqueue", "events", "--timeout", "60", *args, stdout=out)
        finally:
            connections.close_all()  # this thread's own, before the test database goes

    tail = threading.Thread(target=follow)
    tail.start()
    # The header comes once the tail listens: what follows is heard.
    wait_until(lambda: out.getvalue().startswith("TIME"), 20, "the tail to listen")
    return tail


@pytest.mark.django_db(transaction=True)
def test_events_tail_what_the_workers_do(workers: Workers) -> None:
    workers.start("-P", "threads", "-c", "1")
    out = StringIO()
    tail = _tail(out, "--count", "6")
    ok = tasks.add.delay(1, 1)
    failed = tasks.fail.delay("bad\x1b[2J")
    tail.join(60)
    assert not tail.is_alive()

    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["TIME", "EVENT", "ID", "DETAIL"] and len(lines) == 7
    events = [line.split()[1:3] for line in lines[1:]]
    # Each job: started, then ended (a job this brief usually ends before its worker
    # records the start, which is then printed just before the end).
    for job, ended in ((ok, "task-succeeded"), (failed, "task-failed")):
        assert events.index(["task-started", job.id]) < events.index([ended, job.id])
    by_event = {line.split()[1] + line.split()[2]: line for line in lines[1:]}
    succeeded = by_event["task-succeeded" + ok.id]
    assert tasks.add.name in succeeded
    assert "error=ValueError" in by_event["task-failed" + failed.id]
    assert "attempt=1" in by_event["task-started" + ok.id]
    assert "\x1b" not in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_events_show_a_job_start_as_the_worker_records_it(workers: Workers) -> None:
    workers.start("-P", "threads", "-c", "1")
    out = StringIO()
    tail = _tail(out, "--count", "4")
    # spin: a Python loop, which a revoke ends at once in the threads pool (a sleep
    # would run its 30 s out first).
    running = tasks.spin.delay(30)
    wait_until(lambda: "task-started" in out.getvalue(), 30, "the start to be printed")
    # Printed while the job runs: from the worker's notification, not from its end.
    assert Job.objects.get(pk=running.id).state == "STARTED"
    running.revoke(terminate=True)
    tail.join(60)
    assert not tail.is_alive()
    events = [line.split()[1:3] for line in out.getvalue().splitlines()[1:]]
    assert events == [
        ["jobs-waiting", "queue=default"],
        ["task-started", running.id],
        ["revoke-asked", running.id],
        ["task-revoked", running.id],
    ]
