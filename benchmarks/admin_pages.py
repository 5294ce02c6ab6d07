"""Time the admin's job pages and dashboard on a table of a million jobs (or ten).

    .venv/bin/python benchmarks/admin_pages.py [--rows 1000000] [--repeat 5]
    .venv/bin/python benchmarks/admin_pages.py --rows 10000000   # the console's target

Fills its own database (``djqueue_admin_bench``, dropped and made anew unless
``--keep``) with jobs in every state over three days, then requests each page through
Django's test client as a superuser and prints the median and worst time per page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATABASE = "djqueue_admin_bench"

# One INSERT builds every row on the server: 1% waiting, 0.2% running, 2% failed, the
# rest succeeded, over ten tasks and three queues, finished over the last three days.
FILL = """
INSERT INTO djqueue_job (
    id, task_name, queue, priority, state, args, kwargs, attempt, retries, max_attempts,
    eta, enqueued_at, started_at, finished_at, worker, error_type, error_message, traceback,
    gated
)
SELECT
    gen_random_uuid(),
    'benchmarks.benchapp.tasks.task_' || (n %% 10),
    (ARRAY['default', 'mail', 'reports'])[1 + n %% 3],
    0,
    CASE WHEN n %% 100 = 0 THEN 'PENDING' WHEN n %% 500 = 1 THEN 'STARTED'
         WHEN n %% 50 = 2 THEN 'FAILURE' ELSE 'SUCCESS' END,
    jsonb_build_array(n), '{}'::jsonb, 1, 0, 4,
    now() - make_interval(secs => n * 0.25),
    now() - make_interval(secs => n * 0.25),
    CASE WHEN n %% 100 = 0 THEN NULL ELSE now() - make_interval(secs => n * 0.25 - 1) END,
    CASE WHEN n %% 100 = 0 OR n %% 500 = 1 THEN NULL
         ELSE now() - make_interval(secs => n * 0.25 - 2) END,
    'bench-worker',
    CASE WHEN n %% 50 = 2 THEN 'ValueError' ELSE '' END,
    CASE WHEN n %% 50 = 2 THEN 'bad input ' || n ELSE '' END,
    '',
    false
FROM generate_series(1, %s) AS n
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse a filled database")
    options = parser.parse_args()
    os.environ["DJQUEUE_BENCH_DB"] = DATABASE
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.admin_settings")
    sys.path.insert(0, str(REPO_ROOT))
    if not options.keep:
        _recreate_database()
    import django

    django.setup()
    if not options.keep:
        _fill(options.rows)
    _report(_time_pages(options.repeat), options.rows)
    return 0


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        c.execute(f'CREATE DATABASE "{DATABASE}"')


# Built after the fill (faster than row by row), as migration 0023 defines them.
SEARCH_INDEXES = ("djqueue_job_call_search", "djqueue_job_error_search")


def _fill(rows: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
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
    print(f"filled {rows:,} jobs in {time.monotonic() - started:.1f}s")


def _time_pages(repeat: int) -> dict[str, list[float]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from djqueue.db.models import Job

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    some_id = Job.objects.values_list("id", flat=True).first()
    # The page that counts the most jobs ahead: the last due job of a busy queue.
    last_waiting = (
        Job.objects.filter(state="PENDING", queue="default")
        .order_by("-eta")
        .values_list("id", flat=True)
    ).first()
    flow_id = _workflow()
    # The row FILL numbered n holds args [n]; a failed one (n % 50 == 2) "bad input n".
    middle = Job.objects.count() // 2 // 50 * 50 + 2
    pages = {
        "job list": "/admin/djqueue/job/",
        "job list, failed": "/admin/djqueue/job/?state__exact=FAILURE",
        "job list, waiting": "/admin/djqueue/job/?state__exact=PENDING",
        "job list, one task": "/admin/djqueue/job/?task=benchmarks.benchapp.tasks.task_3",
        "job list, one queue": "/admin/djqueue/job/?queue__exact=mail",
        "job list, search by id": f"/admin/djqueue/job/?q={some_id}",
        "job list, search by id start": f"/admin/djqueue/job/?q={str(some_id)[:13]}",
        "job list, search by argument": f"/admin/djqueue/job/?q={middle}",
        "job list, search by error": f"/admin/djqueue/job/?q=bad+input+{middle}",
        "job list, failed, searched": (
            f"/admin/djqueue/job/?state__exact=FAILURE&q=bad+input+{middle}"
        ),
        "job page": f"/admin/djqueue/job/{some_id}/change/",
        "job page, last in line": f"/admin/djqueue/job/{last_waiting}/change/",
        "job page, in a workflow": f"/admin/djqueue/job/{flow_id}/change/",
        "dashboard": "/admin/djqueue/job/dashboard/",
        "worker list": "/admin/djqueue/worker/",
    }
    timings: dict[str, list[float]] = {}
    for name, url in pages.items():
        client.get(url)  # warm caches and connection
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url)
            runs.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code}")
        timings[name] = runs
    return timings


def _workflow() -> object:
    """A chord of 20 header jobs and a chain after its body, sent once; the id of the
    body's job (its page draws the workflow and says why the body waits)."""
    import djqueue
    from benchmarks.benchapp import tasks

    header = [tasks.noop.si(n) for n in range(20)]
    last = djqueue.chain(djqueue.chord(header, tasks.noop.si(0)), tasks.noop.si(1)).apply_async()
    return last.parent.id


def _report(timings: dict[str, list[float]], rows: int) -> None:
    print(f"\nadmin pages over {rows:,} jobs (seconds, {len(next(iter(timings.values())))} runs)")
    print(f"{'page':<32} {'median':>8} {'worst':>8}")
    for name, runs in timings.items():
        print(f"{name:<32} {statistics.median(runs):>8.3f} {max(runs):>8.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
