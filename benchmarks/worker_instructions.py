"""A worker's own cost per job in machine instructions, this checkout beside another.

Drain rates on a shared machine vary by tens of percent from run to run; instructions
do not. A solo worker with one slot runs under valgrind's callgrind (which counts the
instructions a process executes, whatever else the machine does) and drains
``--jobs`` no-op jobs; another starts and stops with none. The difference over the
jobs is the worker's instructions per job: claiming, running, reporting and writing
outcomes in Python, not PostgreSQL's work (another process; see
``pg_stat_statements`` for it). Outcomes are written when the worker holds nothing
(``FINISH_FLUSH_MS`` long) and the console's rollups are off, so that both checkouts
claim and write in the same batches (printed), however slow valgrind makes them::

    git worktree add --detach ../djqueue-before <commit before the change>
    .venv/bin/python benchmarks/worker_instructions.py --baseline ../djqueue-before

Needs valgrind (Debian's ``valgrind``); each checkout takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = """from benchmarks.settings import *  # noqa: F403
DJQUEUE = dict(DJQUEUE, FINISH_FLUSH_MS=600_000, SERIES_ROLLUP_SECONDS=None)  # noqa: F405
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="the other checkout (the code before)")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs drained (2000)")
    parser.add_argument("--inside", nargs=2, metavar=("JOBS", "OUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def count(checkout: Path, jobs: int, database: str) -> tuple[int, str]:
    """Instructions of a solo worker of ``checkout`` draining ``jobs`` jobs, and what its
    batches were."""
    with tempfile.TemporaryDirectory(prefix="djqueue-instructions-") as scratch:
        Path(scratch, "instructions_settings.py").write_text(SETTINGS)
        env = dict(os.environ, DJQUEUE_BENCH_DB=database)
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), scratch])
        env["DJANGO_SETTINGS_MODULE"] = "instructions_settings"
        out = Path(scratch, "callgrind.out")
        command = [sys.executable, __file__, "--inside", str(jobs), str(out)]
        done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{checkout}: {done.stderr[-2000:]}")
        *_, total, batches = done.stdout.strip().splitlines()
        return int(total), batches


def inside(jobs: int, out: str) -> None:
    """In the checkout measured (its directory first on the path): fill the queue, run
    the worker under callgrind until the jobs are done, print its instruction count."""
    sys.path[:] = [os.getcwd(), *[p for p in sys.path if Path(p).resolve() != ROOT / "benchmarks"]]
    import django

    django.setup()
    from django.db import connection

    from benchmarks import common
    from benchmarks import djqueue_side as side
    from benchmarks.benchapp.tasks import noop

    side.prepare_database()
    side.clean()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM djqueue_worker")
    if jobs:
        noop.delay_many([(index,) for index in range(jobs)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE djqueue_job")
    log = Path(out + ".log")
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    command += ["--dump-instr=no", sys.executable, "manage.py", "runworker"]
    command += ["--pool", "solo", "--concurrency", "1", "--loglevel", "warning"]
    with log.open("w") as errors:
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        if not common.wait_until(lambda: side._workers_registered() >= 1, 900):
            raise RuntimeError(f"the worker did not start:\n{log.read_text()[-2000:]}")
        done = lambda: side._count("finished_at IS NOT NULL") >= jobs  # noqa: E731
        if not common.wait_until(done, 3600, 0.5):
            raise RuntimeError("the drain did not end within an hour")
        time.sleep(1)  # as idle after its jobs as the empty run is after its start
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(600)
    found = re.findall(r"Collected : (\d+)", log.read_text())
    if not found:
        raise RuntimeError(f"callgrind printed no count:\n{log.read_text()[-2000:]}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*)::float8 / greatest(count(DISTINCT claimed_at), 1),"
            " count(*)::float8 / greatest(count(DISTINCT finished_at), 1) FROM djqueue_job"
        )
        per_claim, per_flush = cursor.fetchone()
    print(found[-1])
    print(f"{per_claim:.1f} jobs per claim, {per_flush:.1f} outcomes per write")


def per_job(checkout: Path, jobs: int, name: str) -> tuple[float, str]:
    """Instructions per job of ``checkout``'s worker, and its batches."""
    empty, _ = count(checkout, 0, f"bench_instructions_{name}_0")
    full, batches = count(checkout, jobs, f"bench_instructions_{name}")
    return (full - empty) / jobs, batches


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.inside:
        inside(int(options.inside[0]), options.inside[1])
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind not found (apt-get install valgrind)", file=sys.stderr)
        return 2
    sides = [("this checkout", ROOT, "after")]
    if options.baseline is not None:
        sides.insert(0, ("baseline", options.baseline.resolve(), "before"))
    results = []
    for title, checkout, name in sides:
        print(f"-- {title}: {checkout}", file=sys.stderr, flush=True)
        results.append((title, *per_job(checkout, options.jobs, name)))
    print(f"Worker instructions per no-op job, solo worker with 1 slot, {options.jobs} jobs:")
    for title, value, batches in results:
        print(f"  {title:<14} {value:>10,.0f}   ({batches})")
    if len(results) == 2:
        change = results[1][1] / results[0][1] - 1
        print(f"  change         {change:>+10.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
