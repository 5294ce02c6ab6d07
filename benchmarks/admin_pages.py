"""Time every page of the operations console on a table of a million jobs (or ten).

    .venv/bin/python benchmarks/admin_pages.py [--rows 1000000] [--repeat 3]
    .venv/bin/python benchmarks/admin_pages.py --rows 10000000   # the console's target
    .venv/bin/python benchmarks/admin_pages.py --keep --only "job list" --queries

Fills its own database (``djqueue_admin_bench``, or ``DJQUEUE_ADMIN_BENCH_DB``; dropped
and made anew unless ``--keep``) with jobs in every state over the weeks they take at four
a second, workers, queue rows, periodic tasks with runs, and the time series rolled up
from those jobs; then requests each console page through Django's test client as a
superuser: the overview and its JSON over each range, the job list with each filter and
each kind of search, job pages, queues, workers and periodic tasks. Prints the median and
worst time per page and marks those over the target (300 ms); ``--queries`` also prints
the slowest statements of each page over it. ``--keep`` reuses a filled database (and
migrates it, so that new indexes are built on it).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[1]
# DJQUEUE_ADMIN_BENCH_DB names another database, so that two runs may share a server.
DATABASE = os.environ.get("DJQUEUE_ADMIN_BENCH_DB", "djqueue_admin_bench")
TARGET_SECONDS = 0.3
JOBS = "/admin/djqueue/job/"
RARE_TASK = "benchmarks.benchapp.tasks.task_rare"

# One INSERT builds every row on the server, one job every quarter of a second back from
# now (ten million: 29 days), oldest first. Ids are time-ordered (UUIDv7 from the time
# the job was sent, as djqueue makes them). 1% waiting, 200 held by a worker among the
# newest, 2% failed, the rest succeeded, over ten tasks and three queues; one job in
# 100,000 of a rare task, queue and worker, and one in 100,000 REJECTED, spread over the
# whole table (the worst case for a filter: few matches, all over the table).
FILL = """
INSERT INTO djqueue_job (
    id, task_name, queue, priority, state, args, kwargs, attempt, retries, max_attempts,
    eta, enqueued_at, started_at, finished_at, worker, error_type, error_message, traceback,
    gated
)
SELECT
    encode(set_byte(overlay(uuid_send(gen_random_uuid())
        placing substring(int8send((extract(epoch FROM sent) * 1000)::int8) FROM 3 FOR 6)
        FROM 1 FOR 6), 6, 112 + n %% 16), 'hex')::uuid,
    CASE WHEN n %% 100000 = 7 THEN 'benchmarks.benchapp.tasks.task_rare'
         ELSE 'benchmarks.benchapp.tasks.task_' || (n %% 10) END,
    CASE WHEN n %% 100000 = 7 THEN 'rare'
         ELSE (ARRAY['default', 'mail', 'reports'])[1 + n %% 3] END,
    0,
    CASE WHEN n %% 100 = 0 THEN 'PENDING' WHEN n <= 100000 AND n %% 500 = 1 THEN 'STARTED'
         WHEN n %% 50 = 2 THEN 'FAILURE' WHEN n %% 100000 = 9 THEN 'REJECTED'
         ELSE 'SUCCESS' END,
    jsonb_build_array(n), '{}'::jsonb, 1, 0, 4,
    sent, sent,
    CASE WHEN n %% 100 = 0 THEN NULL ELSE sent + interval '1 second' END,
    CASE WHEN n %% 100 = 0 OR (n <= 100000 AND n %% 500 = 1) THEN NULL
         ELSE sent + interval '2 seconds' END,
    CASE WHEN n %% 100 = 0 THEN '' WHEN n %% 100000 = 7 THEN 'rare-worker'
         ELSE 'bench-worker' END,
    CASE WHEN n %% 50 = 2 THEN 'ValueError' ELSE '' END,
    CASE WHEN n %% 50 = 2 THEN 'bad input ' || n ELSE '' END,
    CASE WHEN n %% 50 = 2 THEN 'Traceback (most recent call last):' || E'\\n'
         || '  File "tasks.py", line 3, in task' || E'\\n' || 'ValueError: bad input ' || n
         ELSE '' END,
    false
FROM generate_series(%s, 1, -1) AS n,
     LATERAL (SELECT now() - make_interval(secs => n * 0.25)) AS t(sent)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="reuse a filled database")
    parser.add_argument("--only", default="", help="time only pages whose name has this")
    parser.add_argument("--queries", action="store_true", help="show slow pages' statements")
    options = parser.parse_args()
    os.environ["DJQUEUE_BENCH_DB"] = DATABASE
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.admin_settings")
    sys.path.insert(0, str(REPO_ROOT))
    if not options.keep:
        _recreate_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not options.keep:
        _fill(options.rows)
        _surroundings()
    pages = {name: url for name, url in _pages().items() if options.only in name}
    timings = _time_pages(pages, options.repeat, options.queries)
    _report(timings, _table_rows())
    return 0


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        c.execute(f'CREATE DATABASE "{DATABASE}"')


# Built after the fill (faster than row by row), as the migrations define them.
SEARCH_INDEXES = ("djqueue_job_error_search",)


def _fill(rows: int) -> None:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
            [list(SEARCH_INDEXES)],
        )
        search_indexes = cursor.fetchall()
        for name, _ in search_indexes:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute(FILL, [rows])
        for _, definition in search_indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE djqueue_job")
    print(f"filled {rows:,} jobs in {time.monotonic() - started:.1f}s", flush=True)


def _surroundings() -> None:
    """Workers (one alive, one lost, stopped ones), a paused and a limited queue, periodic
    tasks with a run each, the time series of the last eight days rolled up from the jobs,
    and queue depth samples for them."""
    from django.db import connection
    from django.utils import timezone

    from djqueue.db import series
    from djqueue.db.models import (
        IntervalSchedule,
        Job,
        PeriodicRun,
        PeriodicTask,
        Queue,
        QueueMinute,
        Worker,
    )

    started = time.monotonic()
    now = timezone.now()
    for n, name in enumerate(["bench-worker", "rare-worker", *(f"old-{i}" for i in range(30))]):
        alive = name == "bench-worker"
        Worker.objects.create(
            name=name,
            hostname="bench-host",
            pid=1000 + n,
            pool="prefork",
            concurrency=8,
            queues=["default", "mail", "reports"],
            started_at=now - datetime.timedelta(days=1),
            last_heartbeat=now if alive else now - datetime.timedelta(hours=n + 1),
            stopped_at=None if alive or name == "rare-worker" else now,
            children=[{"pid": 2000 + i, "job": None, "memory_kb": 51200} for i in range(8)],
        )
    Queue.objects.create(name="reports", paused=True)
    Queue.objects.create(name="mail", concurrency_limit=4, rate_limit=100, rate_period=60.0)
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    newest = list(Job.objects.order_by("-id").values_list("id", "enqueued_at")[:20])
    for n, (job_id, sent) in enumerate(newest):
        task = PeriodicTask.objects.create(
            name=f"report {n}", task="bench.noop", interval=every, queue="reports"
        )
        PeriodicRun.objects.create(periodic_task=task, slot=sent, job_id=job_id, enqueued_at=sent)
    minute = now.replace(second=0, microsecond=0)
    for day in range(8, 0, -1):
        series.rewrite_minutes(
            minute - datetime.timedelta(days=day), minute - datetime.timedelta(days=day - 1)
        )
    QueueMinute.objects.bulk_create(
        QueueMinute(
            minute=minute - datetime.timedelta(minutes=ago),
            queue=queue,
            waiting=100_000 // 3,
            scheduled=0,
            running=60,
            oldest_seconds=2_500_000.0,
        )
        for ago in range(1, 8 * 24 * 60)
        for queue in ("", "default", "mail", "reports")
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"workers, queues, schedules and series in {time.monotonic() - started:.1f}s")


def _table_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM djqueue_job")
        return int(cursor.fetchone()[0])


def _jobs(**query: object) -> str:
    shown = {
        key: value.isoformat() if isinstance(value, datetime.datetime) else value
        for key, value in query.items()
    }
    return f"{JOBS}?{urlencode(shown)}"


def _pages() -> dict[str, str]:
    """Every console page, by name: the URLs a user opens or the console links to."""
    from django.db.models import Max
    from django.utils import timezone

    from djqueue.core import states
    from djqueue.db.models import Job, PeriodicTask, Worker

    some_id = Job.objects.filter(state="SUCCESS").order_by("-id").values_list("id", flat=True)[500]
    failed_id = Job.objects.filter(state="FAILURE").values_list("id", flat=True).first()
    running_id = Job.objects.filter(state="STARTED").values_list("id", flat=True).first()
    # The page that counts the most jobs ahead: the last due job of a busy queue.
    last_waiting = (
        Job.objects.filter(state="PENDING", queue="default")
        .order_by("-eta")
        .values_list("id", flat=True)
    ).first()
    flow_id = _workflow()
    newest = Job.objects.filter(finished_at__isnull=False).aggregate(Max("finished_at"))
    end = newest["finished_at__max"].replace(second=0, microsecond=0)
    now = timezone.localtime()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + datetime.timedelta(days=1)
    week_ago = today - datetime.timedelta(days=7)
    month = today.replace(day=1)
    a_minute = end - datetime.timedelta(days=3)
    an_hour = end - datetime.timedelta(days=10)
    # The row FILL numbered n holds args [n]; a failed one (n % 50 == 2) "bad input n".
    middle = _table_rows() // 2 // 50 * 50 + 2
    waiting = ",".join(sorted(states.WAITING))
    held = ",".join(sorted(states.HELD))
    task = PeriodicTask.objects.order_by("pk").values_list("pk", flat=True).first()
    workers = dict(Worker.objects.values_list("name", "pk"))
    pages = {
        "overview": "/admin/djqueue/job/dashboard/",
        "overview, day": "/admin/djqueue/job/dashboard/?range=day",
        "overview, week": "/admin/djqueue/job/dashboard/?range=week",
        "overview data (JSON)": "/admin/djqueue/job/dashboard/data/",
        "overview data (JSON), day": "/admin/djqueue/job/dashboard/data/?range=day",
        "overview data (JSON), week": "/admin/djqueue/job/dashboard/data/?range=week",
        "job list": JOBS,
        "job list, page 2": _jobs(p=2),
        "job list, page 100": _jobs(p=100),
        **{f"job list, {state}": _jobs(state__exact=state) for state in sorted(states.ALL)},
        "job list, waiting (link)": _jobs(state__in=waiting),
        "job list, held (link)": _jobs(state__in=held),
        "job list, waiting in a queue (link)": _jobs(state__in=waiting, queue__exact="mail"),
        "job list, waiting, due before (link)": _jobs(
            state__in=waiting, queue__exact="mail", eta__lt=end - datetime.timedelta(days=5)
        ),
        "job list, one queue": _jobs(queue__exact="mail"),
        "job list, a rare queue": _jobs(queue__exact="rare"),
        "job list, one task": _jobs(task="benchmarks.benchapp.tasks.task_3"),
        "job list, a rare task": _jobs(task=RARE_TASK),
        "job list, one worker": _jobs(worker__exact="bench-worker"),
        "job list, a rare worker": _jobs(worker__exact="rare-worker"),
        "job list, held by a worker (link)": _jobs(state__in=held, worker__exact="bench-worker"),
        "job list, failed of one task": _jobs(
            state__exact="FAILURE", task="benchmarks.benchapp.tasks.task_2"
        ),
        "job list, rejected in a rare queue": _jobs(state__exact="REJECTED", queue__exact="rare"),
        "job list, enqueued today": _jobs(enqueued_at__gte=today, enqueued_at__lt=tomorrow),
        "job list, enqueued past 7 days": _jobs(
            enqueued_at__gte=week_ago, enqueued_at__lt=tomorrow
        ),
        "job list, enqueued this month": _jobs(enqueued_at__gte=month, enqueued_at__lt=tomorrow),
        "job list, enqueued in an hour 10 days ago": _jobs(
            enqueued_at__gte=an_hour, enqueued_at__lt=an_hour + datetime.timedelta(hours=1)
        ),
        "job list, enqueued 10 days ago, one task": _jobs(
            enqueued_at__gte=an_hour,
            enqueued_at__lt=an_hour + datetime.timedelta(hours=1),
            task=RARE_TASK,
        ),
        "job list, finished today": _jobs(finished_at__gte=today, finished_at__lt=tomorrow),
        "job list, finished past 7 days": _jobs(
            finished_at__gte=week_ago, finished_at__lt=tomorrow
        ),
        "job list, finished in a minute (chart link)": _jobs(
            finished_at__gte=a_minute, finished_at__lt=a_minute + datetime.timedelta(minutes=1)
        ),
        "job list, failed in an hour (chart link)": _jobs(
            state__exact="FAILURE",
            finished_at__gte=an_hour,
            finished_at__lt=an_hour + datetime.timedelta(hours=1),
        ),
        "job list, retried in a minute (chart link)": _jobs(
            retried_at__gte=a_minute, retried_at__lt=a_minute + datetime.timedelta(minutes=1)
        ),
        "job list, search by id": _jobs(q=some_id),
        "job list, search by id start": _jobs(q=str(some_id)[:13]),
        "job list, search by argument": _jobs(q=middle),
        "job list, search by keyword argument": _jobs(q=f"n={middle}"),
        "job list, search by error": _jobs(q=f"bad input {middle}"),
        "job list, search by task name": _jobs(q="noop"),
        "job list, search finding nothing": _jobs(q="no job has this"),
        "job list, failed, searched": _jobs(state__exact="FAILURE", q=f"bad input {middle}"),
        "job list, one task, searched": _jobs(task=RARE_TASK, q=middle),
        "job page": f"{JOBS}{some_id}/change/",
        "job page, failed": f"{JOBS}{failed_id}/change/",
        "job page, running": f"{JOBS}{running_id}/change/",
        "job page, last in line": f"{JOBS}{last_waiting}/change/",
        "job page, in a workflow": f"{JOBS}{flow_id}/change/",
        "queues": "/admin/djqueue/queue/",
        "queue page": "/admin/djqueue/queue/mail/change/",
        "workers": "/admin/djqueue/worker/",
        "worker page": f"/admin/djqueue/worker/{workers['bench-worker']}/change/",
        "worker page, lost": f"/admin/djqueue/worker/{workers['rare-worker']}/change/",
        "periodic tasks": "/admin/djqueue/periodictask/",
        "periodic task page": f"/admin/djqueue/periodictask/{task}/change/",
        "metrics (Prometheus)": "/tasks/metrics/",
    }
    return pages


def _time_pages(pages: dict[str, str], repeat: int, queries: bool) -> dict[str, list[float]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    timings: dict[str, list[float]] = {}
    for name, url in pages.items():
        client.get(url)  # warm caches and connection
        runs = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                runs.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code} for {url}")
        timings[name] = runs
        print(f"{name:<48} {statistics.median(runs):>8.3f}", flush=True)
        if queries and statistics.median(runs) > TARGET_SECONDS:
            slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:3]
            for query in slowest:
                print(f"    {float(query['time']):.3f} s  {query['sql'][:400]}")
    return timings


def _workflow() -> Any:
    """A chord of 20 header jobs and a chain after its body, sent once; the id of the
    body's job (its page draws the workflow and says why the body waits)."""
    import djqueue
    from benchmarks.benchapp import tasks

    header = [tasks.noop.si(n) for n in range(20)]
    last = djqueue.chain(djqueue.chord(header, tasks.noop.si(0)), tasks.noop.si(1)).apply_async()
    return last.parent.id


def _report(timings: dict[str, list[float]], rows: int) -> None:
    runs = len(next(iter(timings.values()))) if timings else 0
    print(f"\nconsole pages over {rows:,} jobs (seconds, {runs} runs; * over {TARGET_SECONDS})")
    print(f"{'page':<48} {'median':>8} {'worst':>8}")
    for name, taken in timings.items():
        median = statistics.median(taken)
        over = " *" if median > TARGET_SECONDS else ""
        print(f"{name:<48} {median:>8.3f} {max(taken):>8.3f}{over}")


if __name__ == "__main__":
    raise SystemExit(main())
