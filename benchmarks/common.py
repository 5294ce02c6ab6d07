"""Helpers shared by the benchmarks: statistics, processes, deadlines, and running two
checkouts side by side in turns."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile of ``values``, nearest-rank."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def rate(count: int, seconds: float) -> float:
    """Jobs per second; infinite when no measurable time passed."""
    return count / seconds if seconds > 0 else float("inf")


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Call ``check`` every ``every`` seconds until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a subprocess that imports ``benchmarks`` and ``djqueue`` from here."""
    env = dict(os.environ)
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra)
    return env


def start(command: Sequence[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group with output going to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop(processes: Sequence[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """SIGTERM each process (a warm shutdown), then SIGKILL its group after ``grace``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # A process group of our own making: take its children (pool processes) too.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of ``log``, for error messages."""
    if not log.exists():
        return "(no output)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# Side by side: this checkout against another (``git worktree add --detach``) -------------


def in_turns(rounds: int, first: str, second: str) -> Iterator[tuple[int, str]]:
    """(round, side) in ABBA order: ``first`` then ``second``, then the other way round,
    so that a drift of the machine during a run weighs on both sides alike."""
    for round_ in range(rounds):
        order = (first, second) if round_ % 2 == 0 else (second, first)
        for side in order:
            yield round_, side


def checkout_env(tree: Path, database: str, **extra: str) -> dict[str, str]:
    """Environment for a process that runs the code of the checkout ``tree`` (its
    ``djqueue`` and its ``benchmarks``, nothing else) on the benchmark database
    ``database``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "DJQUEUE_BENCH_DB": database}
    env.pop("DJQUEUE_BENCH_ROLLUP_SECONDS", None)
    env.update(extra)
    return env


def run_in(tree: Path, command: Sequence[str], env: dict[str, str]) -> str:
    """Run ``command`` in the checkout ``tree`` and return its output; exit with both
    its outputs when it fails."""
    done = subprocess.run(
        list(command), cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed in {tree}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def drop_database(name: str) -> None:
    """Drop the benchmark database ``name`` if it exists; the next run makes it anew."""
    # Imported here: the Celery side imports this module in a virtualenv without psycopg.
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        dbname="postgres",
        user=os.environ.get("PGUSER", "postgres"),
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        password=os.environ.get("PGPASSWORD", ""),
        autocommit=True,
    ) as admin:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        admin.execute(drop)


def change(before: float, after: float) -> float:
    """``after`` relative to ``before``: +0.05 is 5 % more."""
    return (after - before) / before if before else float("inf")
