"""The single-machine ceiling: where a job's time goes in a full-speed drain.

Three measurements on the same queue of no-op jobs::

    .venv/bin/python benchmarks/ceiling.py --jobs 20000

1. **The data layer alone**: one process claims 100 jobs and writes their outcomes
   (``djqueue.db`` claim and finish, no worker, no task), over and over: the rate the
   SQL allows.
2. **A drain** by ``runworker`` processes (2 x threads c=4 by default): the rate, and
   the CPU seconds per job of the workers and of their PostgreSQL backends, read from
   ``/proc``.
3. **A profiled drain**, the same with a sampling profiler (py-spy, from the benchmark
   virtualenv) attached to each worker from outside: the worker's CPU split into
   claim, hand-off, executor, outcome, flush and the rest, by the djqueue function
   each sample was in. The worker runs its normal code; the profiler slows it, so the
   shares come from this drain and the CPU per job from the unprofiled one.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common, load  # noqa: E402

DATABASE = "djqueue_bench_ceiling"
PHASES = ("claim", "hand-off", "executor", "outcome", "flush", "background", "other")
# (file ending, function or None for any) -> phase; a sample goes to the phase of the
# first rule matched by its frames, innermost frame first.
RULES: tuple[tuple[str, str | None, str], ...] = (
    ("djqueue/db/finishing.py", None, "flush"),
    ("djqueue/runtime/outcomes.py", "_write", "flush"),
    ("djqueue/db/claims.py", "renew_leases", "background"),
    ("djqueue/db/claims.py", "mark_started", "background"),
    ("djqueue/db/claims.py", None, "claim"),
    ("djqueue/runtime/claims.py", "submit", "hand-off"),
    ("djqueue/runtime/claims.py", None, "claim"),
    ("benchmarks/benchapp/tasks.py", None, "executor"),
    ("djqueue/core/executor.py", None, "executor"),
    ("djqueue/runtime/runner.py", "_execute", "executor"),
    ("djqueue/runtime/runner.py", "report", "outcome"),
    ("djqueue/core/endings.py", None, "outcome"),
    ("djqueue/core/reporting.py", None, "outcome"),
    ("djqueue/runtime/outcomes.py", None, "outcome"),
    ("djqueue/runtime/runner.py", None, "hand-off"),
    ("djqueue/runtime/pools/", None, "hand-off"),
    ("djqueue/runtime/worker.py", "gather", "hand-off"),
    ("djqueue/runtime/leases.py", None, "background"),
)


# Functions that wait (a lock, an event, a socket) when a sample finds them innermost.
# Only samples of the thread holding the GIL are taken (--gil), which leaves out
# threads waiting on a lock or a socket; any of these left are not counted as CPU.
WAITS = frozenset({"wait", "gather", "wait_c", "sleep", "select", "poll"})
SAMPLE_RATE = 200  # samples per second per thread


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain (20000)")
    parser.add_argument("--workers", type=int, default=2, help="runworker processes (2)")
    parser.add_argument("--pool", default="threads", help="pool (threads)")
    parser.add_argument("--concurrency", type=int, default=4, help="slots per worker (4)")
    parser.add_argument("--batch", type=int, default=100, help="data layer batch (100)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per drain (300)")
    parser.add_argument(
        "--prefetch-multiplier", type=int, help="passed to runworker (its default: 4)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled drain")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def data_layer(jobs: int, batch: int) -> dict[str, Any]:
    """Claim ``batch`` jobs and finish them, until ``jobs`` are done, in this process."""
    from benchmarks.benchapp.tasks import noop
    from benchmarks.djqueue_side import clean
    from djqueue.core.records import Outcome
    from djqueue.db import claims, finishing

    clean()
    noop.delay_many([(index,) for index in range(jobs)])
    from django.db import connection

    worker = f"ceiling-{uuid.uuid4().hex[:8]}"
    done = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    server_before = load.cpu_seconds([backend])
    cpu_before = time.process_time()
    started = time.perf_counter()
    while done < jobs:
        claimed = claims.claim(["default"], batch, worker, 60.0, limited=False)
        if not claimed:
            break
        finishing.finish(
            [
                Outcome(job.id, job.attempt, job.task_name, "SUCCESS", "null", worker=worker)
                for job in claimed
            ]
        )
        done += len(claimed)
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_before
    server_cpu = load.cpu_seconds([backend]) - server_before
    return {
        "data_layer_server_us": server_cpu / max(done, 1) * 1e6,
        "data_layer": common.rate(done, elapsed),
        "data_layer_client_us": client_cpu / max(done, 1) * 1e6,
        "data_layer_done": done,
    }


def drain(options: argparse.Namespace, profiler: str | None) -> dict[str, Any]:
    """Drain ``--jobs`` no-op jobs with workers, optionally each under ``profiler``.

    The workers start on a paused queue, so that their start-up (imports, connections)
    is not counted: CPU is read and the profilers attach once they idle, then the
    queue is resumed.
    """
    from benchmarks import djqueue_side as side
    from benchmarks.benchapp.tasks import noop
    from djqueue.db import broker

    side.clean()
    broker.set_paused("default", True)
    spec = side.WorkerSpec(options.workers, options.pool, options.concurrency)
    logs = Path(tempfile.mkdtemp(prefix="djqueue-ceiling-"))
    extra = []
    if options.prefetch_multiplier is not None:
        extra = ["--prefetch-multiplier", str(options.prefetch_multiplier)]
    workers = side.start_workers(spec, logs, extra)
    profilers: list[subprocess.Popen[bytes]] = []
    outputs = [logs / f"profile-{i}.txt" for i in range(len(workers))]
    try:
        if not common.wait_until(lambda: side._workers_registered() >= spec.count, 120):
            raise RuntimeError(f"workers did not start:\n{common.tail(logs / 'worker-0.log')}")
        noop.delay_many([(index,) for index in range(options.jobs)])
        if profiler is not None:
            profilers = [
                _profile(profiler, w.pid, out) for w, out in zip(workers, outputs, strict=True)
            ]
            time.sleep(2)  # let the profilers attach
        before = {pid: load.cpu_seconds([pid]) for pid in (w.pid for w in workers)}
        backends_before = _backend_cpu()
        broker.set_paused("default", False)
        deadline = time.monotonic() + options.timeout
        cpu, backends = before, backends_before
        while side._count("finished_at IS NOT NULL") < options.jobs:
            if time.monotonic() > deadline:
                raise RuntimeError(f"drain timed out:\n{common.tail(logs / 'worker-0.log')}")
            # Read while they live: a process's CPU time goes with it.
            cpu = {worker.pid: load.cpu_seconds([worker.pid]) for worker in workers}
            backends = _backend_cpu()
            time.sleep(0.2)
        cpu = {worker.pid: load.cpu_seconds([worker.pid]) for worker in workers}
        backends = _backend_cpu()
    finally:
        for process in profilers:
            process.send_signal(signal.SIGINT)
        for process in profilers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        common.stop(workers)
        broker.set_paused("default", False)
    first_start, last_finish, success, once = side._drain_facts()
    worker_cpu = sum(cpu[pid] - before[pid] for pid in cpu)
    server_cpu = sum(seconds - backends_before.get(pid, 0.0) for pid, seconds in backends.items())
    found: dict[str, Any] = {
        "drain": common.rate(options.jobs, last_finish - first_start),
        "drain_ok": success == options.jobs and once == options.jobs,
        "worker_us_per_job": worker_cpu / options.jobs * 1e6,
        "server_us_per_job": server_cpu / options.jobs * 1e6,
        **_batches(),
    }
    if profiler is not None:
        found["shares"] = shares(outputs)
    return found


def _batches() -> dict[str, float]:
    """Jobs per claim statement and outcomes per finish statement, from the rows: the
    jobs of one claim share its ``claimed_at`` (the statement's time), the outcomes of
    one flush their ``finished_at`` (its transaction's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*)::float8 / count(DISTINCT (worker, claimed_at)),"
            " count(*)::float8 / count(DISTINCT (worker, finished_at)) FROM djqueue_job"
        )
        per_claim, per_flush = cursor.fetchone()
    return {"jobs_per_claim": per_claim, "outcomes_per_flush": per_flush}


def _backend_cpu() -> dict[int, float]:
    """CPU seconds of each client backend of the benchmark database, by pid."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        pids = [int(row[0]) for row in cursor.fetchall()]
    return {pid: load.cpu_seconds([pid]) for pid in pids}


def profiler_program() -> str | None:
    """py-spy, from the benchmark virtualenv (``bench.py --setup``) or the PATH."""
    from benchmarks.bench import CELERY_VENV

    found = CELERY_VENV / "bin" / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def _profile(program: str, pid: int, output: Path) -> subprocess.Popen[bytes]:
    # Raw (collapsed) stacks of the thread that holds the GIL: the one running Python
    # code (a thread waiting on a lock or on PostgreSQL has let go of it).
    command = [program, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE), "--format", "raw"]
    command += ["--gil", "--subprocesses", "--output", str(output)]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def shares(outputs: Sequence[Path]) -> dict[str, Any]:
    """From the profiles: the fraction of the samples in each phase."""
    running: collections.Counter[str] = collections.Counter()
    waiting: collections.Counter[str] = collections.Counter()
    for output in outputs:
        if not output.exists():
            continue
        for line in output.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                frames = stack.split(";")
                side = waiting if _function(frames[-1]) in WAITS else running
                side[phase_of(frames)] += int(count)
    total = sum(running.values())
    if not total:
        return {}
    return {
        "cpu": {phase: running[phase] / total for phase in PHASES},
        "samples": total,
        "waiting_samples": sum(waiting.values()),
    }


def phase_of(frames: Sequence[str]) -> str:
    """The phase a sample belongs to; ``frames`` root first, as py-spy writes them."""
    for frame in reversed(frames):
        for ending, function, phase in RULES:
            if ending in frame and (function is None or _function(frame) == function):
                return phase
    return "other"


def _function(frame: str) -> str:
    """The function's own name in a py-spy frame ("Class.method (path:line)")."""
    return frame.split(" (", 1)[0].rsplit(".", 1)[-1]


def table(found: dict[str, Any]) -> str:
    """Where a job's time goes, as text."""
    lines = [
        f"data layer alone, claim + finish in batches of {found['batch']}: "
        f"{found['data_layer']:,.0f} jobs/s; CPU per job: client "
        f"{found['data_layer_client_us']:.0f} µs, PostgreSQL backend "
        f"{found['data_layer_server_us']:.0f} µs",
        f"drain, {found['spec']}: {found['drain']:,.0f} jobs/s; CPU per job: workers "
        f"{found['worker_us_per_job']:.0f} µs, PostgreSQL backends "
        f"{found['server_us_per_job']:.0f} µs",
        f"  {found['jobs_per_claim']:.1f} jobs per claim, {found['outcomes_per_flush']:.1f} "
        "outcomes per flush (from the rows' claimed_at and finished_at)",
    ]
    if found.get("shares"):
        lines.append("\nworker CPU per job, by phase (shares from the profiled drain):")
        lines.append(f"  {'phase':<10} {'share':>6} {'µs/job':>7}")
        for phase, share in found["shares"]["cpu"].items():
            micros = share * found["worker_us_per_job"]
            lines.append(f"  {phase:<10} {share:>6.1%} {micros:>7.1f}")
    elif "profile_skipped" in found:
        lines.append(f"\nno profile: {found['profile_skipped']}")
    return "\n".join(lines)


def run(options: argparse.Namespace) -> dict[str, Any]:
    """All three measurements in this process, with Django set up."""
    os.environ.setdefault("DJQUEUE_BENCH_DB", DATABASE)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from benchmarks import djqueue_side as side

    side.prepare_database()
    found: dict[str, Any] = {"batch": options.batch}
    found["spec"] = f"{options.workers} x {options.pool} c={options.concurrency}"
    print("-- ceiling: the data layer alone", file=sys.stderr, flush=True)
    found.update(data_layer(options.jobs, options.batch))
    print("-- ceiling: a drain", file=sys.stderr, flush=True)
    found.update(drain(options, None))
    program = None if options.no_profile else profiler_program()
    if options.no_profile:
        found["profile_skipped"] = "--no-profile"
    elif program is None:
        found["profile_skipped"] = "py-spy not found (bench.py --setup installs it)"
    else:
        print("-- ceiling: a profiled drain", file=sys.stderr, flush=True)
        profiled = drain(options, program)
        found["shares"] = profiled["shares"]
        found["profiled_drain"] = profiled["drain"]
    side.clean()
    return found


def main(argv: list[str] | None = None) -> int:
    """Measure and print where a job's time goes."""
    options = parse_args(argv)
    found = run(options)
    print(f"\n{options.jobs} jobs; load average {os.getloadavg()[0]:.1f}\n")
    print(table(found))
    if options.json:
        options.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0 if found["drain_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
