"""Measure djqueue's enqueue rate, drain rate and pick-up latency; optionally Celery's too.

Run from the repository root::

    .venv/bin/python benchmarks/bench.py --jobs 20000 --workers 2 --pool threads \
        --concurrency 4 --celery

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

# Run as a script, this file's folder is on sys.path but the repository root (where
# ``benchmarks`` and ``djqueue`` live) may not be.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402

CELERY_VENV = ROOT / "benchmarks" / ".venv-celery"
CELERY_REQUIREMENTS = ["celery[redis]>=5.4,<6"]

# Figure key -> (threshold, how it is shown). Keys ending in _ms: lower is better.
TARGETS: dict[str, tuple[float, str]] = {
    "enqueue_bulk": (50_000, "≥ 50,000/s"),
    "drain": (5_000, "≥ 5,000/s with 2 workers"),
    "latency_p50_ms": (5.0, "≤ 5 ms"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per phase (20000)")
    parser.add_argument("--workers", type=int, default=2, help="runworker processes (2)")
    parser.add_argument("--pool", default="threads", help="djqueue pool (threads)")
    parser.add_argument("--concurrency", type=int, default=4, help="slots per worker (4)")
    parser.add_argument(
        "--latency-jobs", type=int, default=200, help="jobs sent one at a time (200)"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds per phase (300)")
    parser.add_argument("--celery", action="store_true", help="also run Celery + Redis")
    parser.add_argument(
        "--setup", action="store_true", help="(re)install the Celery virtualenv and stop"
    )
    parser.add_argument("--json", type=Path, help="also write all figures to this file")
    return parser.parse_args(argv)


def setup_celery(force: bool = False) -> Path:
    """Create ``benchmarks/.venv-celery`` with Celery and the Redis client; its Python."""
    python = CELERY_VENV / "bin" / "python"
    if force or not (CELERY_VENV / "bin" / "celery").exists():
        print(f"Installing {', '.join(CELERY_REQUIREMENTS)} into {CELERY_VENV} ...", flush=True)
        venv.create(CELERY_VENV, with_pip=True, clear=force)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *CELERY_REQUIREMENTS], check=True
        )
    return python


def run_djqueue(options: argparse.Namespace) -> dict[str, Any]:
    """All djqueue phases, in this process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from benchmarks import djqueue_side as side

    spec = side.WorkerSpec(options.workers, options.pool, options.concurrency)
    side.prepare_database()
    figures: dict[str, Any] = {}
    _phase("djqueue: enqueue one by one")
    figures.update(side.enqueue_one_by_one(options.jobs))
    _phase("djqueue: bulk enqueue")
    figures.update(side.enqueue_bulk(options.jobs))
    _phase(f"djqueue: drain with {options.workers} x {options.pool} c={options.concurrency}")
    figures.update(side.drain(options.jobs, spec, options.timeout))
    _phase("djqueue: pick-up latency")
    figures.update(side.pick_up_latency(options.latency_jobs, spec, options.timeout))
    side.clean()
    return figures


def run_celery(options: argparse.Namespace) -> dict[str, Any]:
    """All Celery phases, in a subprocess running the Celery virtualenv's Python."""
    python = setup_celery()
    _phase("Celery: enqueue one by one, drains, pick-up latency")
    command = [
        str(python),
        "-m",
        "benchmarks.celery_side",
        "--jobs",
        str(options.jobs),
        "--workers",
        str(options.workers),
        "--pool",
        options.pool,
        "--concurrency",
        str(options.concurrency),
        "--latency-jobs",
        str(options.latency_jobs),
        "--timeout",
        str(options.timeout),
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=common.child_env(),
        capture_output=True,
        text=True,
        timeout=options.timeout * 6,
    )
    if done.returncode:
        raise RuntimeError(f"the Celery side failed:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def table(dj: dict[str, Any], cel: dict[str, Any] | None, options: argparse.Namespace) -> str:
    """The figures as a plain-text table."""
    pool = f"{options.workers} x {options.pool} c={options.concurrency}"
    rows: list[tuple[str, str, str, str, str]] = [
        ("figure", "djqueue", "Celery+Redis", "djqueue/Celery", "target")
    ]

    def add(label: str, key: str, cel_key: str | None, unit: str) -> None:
        mine, theirs = dj.get(key), (cel or {}).get(cel_key) if cel_key else None
        ratio = f"{mine / theirs:.2f}x" if mine is not None and theirs else "-"
        target = TARGETS.get(key)
        verdict = ""
        if target is not None and mine is not None:
            met = mine <= target[0] if key.endswith("_ms") else mine >= target[0]
            verdict = f"{target[1]} {'MET' if met else 'MISSED'}"
        if key == "enqueue_one" and mine is not None and theirs:
            verdict = f"≥ Celery {'MET' if mine >= theirs else 'MISSED'}"
        shown_theirs = _fmt(theirs, unit) if cel is not None else "-"
        if cel is not None and cel_key is None:
            shown_theirs = "n/a"
        rows.append((label, _fmt(mine, unit), shown_theirs, ratio, verdict))

    add("enqueue one by one, delay() (jobs/s)", "enqueue_one", "enqueue_one", "/s")
    add("bulk enqueue, delay_many() (jobs/s)", "enqueue_bulk", None, "/s")
    add(f"drain, {pool} vs Celery prefork c=2 (jobs/s)", "drain", "drain_prefork", "/s")
    if cel and "drain_match" in cel:
        add(f"drain, {pool} vs Celery {cel['drain_match_pool']}", "drain", "drain_match", "/s")
    add("drain incl. worker start-up (jobs/s)", "drain_wall", "drain_prefork_wall", "/s")
    add("pick-up latency p50 (ms)", "latency_p50_ms", "latency_p50_ms", "ms")
    add("pick-up latency p99 (ms)", "latency_p99_ms", "latency_p99_ms", "ms")
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if unit == "ms" else f"{value:,.0f}"


def _phase(name: str) -> None:
    print(f"-- {name}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; non-zero exit if a drain check failed."""
    options = parse_args(argv)
    if options.setup:
        setup_celery(force=True)
        return 0
    djq = run_djqueue(options)
    cel = run_celery(options) if options.celery else None
    print(
        f"\n{options.jobs} jobs per phase, {options.latency_jobs} latency samples; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
    )
    print(table(djq, cel, options))
    checks = [f"djqueue drain: {djq['drain_success']} SUCCESS, {djq['drain_exactly_once']} once"]
    if cel:
        checks += [
            f"Celery {k}: {'ok' if v else 'FAILED'}" for k, v in cel.items() if k[-3:] == "_ok"
        ]
    print("\nchecks: " + "; ".join(checks))
    if options.json:
        options.json.write_text(json.dumps({"djqueue": djq, "celery": cel}, indent=2) + "\n")
    ok = djq["drain_ok"] and all(v for k, v in (cel or {}).items() if k.endswith("_ok"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
