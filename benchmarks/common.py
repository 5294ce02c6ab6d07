"""Helpers shared by the djqueue and Celery sides: statistics, processes, deadlines."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
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
