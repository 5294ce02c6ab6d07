"""Measure djqueue's enqueue rate, drain rate and pick-up latency; optionally Celery's too.

Run from the repository root::

    .venv/bin/python benchmarks/bench.py --jobs 20000 --workers 2 --pool threads \
        --concurrency 4 --celery

or, for every pool in one run, each beside Celery's pool of the same name::

    .venv/bin/python benchmarks/bench.py --jobs 20000 --pools solo,threads,prefork,gevent \
        --celery

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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
# procrastinate: the third peer of sustained.py, on a database of its own; py-spy: the
# profiler of ceiling.py.
CELERY_REQUIREMENTS = ["celery[redis]>=5.4,<6", "gevent", "procrastinate>=3,<4", "py-spy"]
# Modules the Celery virtualenv must import; a missing one means (re)installing.
CELERY_MODULES = ("celery", "redis", "gevent", "procrastinate")

# Slots per worker process for each pool in the per-pool mode (--pools): solo has one;
# prefork one child per core here; threads and gevent as many as keep a no-op drain busy.
POOL_CONCURRENCY = {"solo": 1, "threads": 4, "prefork": 2, "gevent": 20}

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
        "--pools",
        type=_pool_list,
        help="per-pool mode: comma-separated pools (solo,threads,prefork,gevent), each "
        "drained with --workers processes at its own concurrency (see --pool-concurrency)",
    )
    parser.add_argument(
        "--pool-concurrency",
        type=_concurrencies,
        default={},
        help="per-pool mode: override concurrencies, e.g. gevent=50,threads=8",
    )
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


def _pool_list(text: str) -> list[str]:
    pools = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(pools) - POOL_CONCURRENCY.keys())
    if unknown or not pools:
        raise argparse.ArgumentTypeError(f"unknown pool(s): {', '.join(unknown) or '(none)'}")
    return list(dict.fromkeys(pools))


def _concurrencies(text: str) -> dict[str, int]:
    try:
        return {name: int(count) for name, _, count in (p.partition("=") for p in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError("expected pool=N[,pool=N...]") from None


def pool_specs(options: argparse.Namespace) -> dict[str, int]:
    """Pool name -> concurrency per worker process, for the per-pool mode."""
    return {
        pool: options.pool_concurrency.get(pool, POOL_CONCURRENCY[pool]) for pool in options.pools
    }


def setup_celery(force: bool = False) -> Path:
    """Create ``benchmarks/.venv-celery`` with Celery, the Redis client and gevent; its Python."""
    python = CELERY_VENV / "bin" / "python"
    if force or not _celery_ready(python):
        print(f"Installing {', '.join(CELERY_REQUIREMENTS)} into {CELERY_VENV} ...", flush=True)
        if force or not python.exists():
            venv.create(CELERY_VENV, with_pip=True, clear=force)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *CELERY_REQUIREMENTS], check=True
        )
    return python


def _celery_ready(python: Path) -> bool:
    """Whether the Celery virtualenv exists and imports everything the run needs."""
    if not (CELERY_VENV / "bin" / "celery").exists():
        return False
    imports = "; ".join(f"import {module}" for module in CELERY_MODULES)
    return subprocess.run([str(python), "-c", imports], capture_output=True).returncode == 0


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


def run_djqueue_pools(options: argparse.Namespace) -> dict[str, Any]:
    """Enqueue phases once, then a drain and a pick-up latency phase per pool."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from benchmarks import djqueue_side as side

    side.prepare_database()
    figures: dict[str, Any] = {}
    _phase("djqueue: enqueue one by one")
    figures.update(side.enqueue_one_by_one(options.jobs))
    figures["pools"] = {}
    for pool, concurrency in pool_specs(options).items():
        spec = side.WorkerSpec(options.workers, pool, concurrency)
        label = f"{spec.count} x {pool} c={concurrency}"
        _phase(f"djqueue: bulk enqueue, drain with {label}, pick-up latency")
        found = side.enqueue_bulk(options.jobs)
        found.update(side.drain(options.jobs, spec, options.timeout))
        found.update(side.pick_up_latency(options.latency_jobs, spec, options.timeout))
        found["spec"] = label
        figures["pools"][pool] = found
    # Each pool's drain starts with a bulk enqueue: the median of those is the figure.
    figures["enqueue_bulk"] = statistics.median(
        found["enqueue_bulk"] for found in figures["pools"].values()
    )
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
    phases = 3
    if options.pools:
        specs = pool_specs(options)
        command += ["--pools", ",".join(f"{pool}={c}" for pool, c in specs.items())]
        phases += 2 * len(specs)
    env = common.child_env()
    # Set for the djqueue side; Celery would warn that it cannot apply its Django fix-ups.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=None if options.pools else subprocess.PIPE,
        text=True,
        # Each phase is bounded on its own; this bounds the whole in case one hangs.
        timeout=options.timeout * (phases + 3),
    )
    if done.returncode:
        raise RuntimeError(f"the Celery side failed:\n{done.stdout}\n{done.stderr or ''}")
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


Row = tuple[str, str, str, str, str]


def pools_table(dj: dict[str, Any], cel: dict[str, Any] | None) -> str:
    """The per-pool figures as a plain-text table: djqueue beside Celery's same pool."""
    rows: list[Row] = [("figure", "djqueue", "Celery+Redis", "djqueue/Celery", "target")]
    mine_one, theirs_one = dj["enqueue_one"], (cel or {}).get("enqueue_one")
    rows.append(
        _row(
            "enqueue one by one, delay() (jobs/s)",
            mine_one,
            theirs_one,
            "/s",
            _versus(mine_one, theirs_one, "≥ Celery"),
        )
    )
    bulk = dj["enqueue_bulk"]
    rows.append(
        _row(
            "bulk enqueue, delay_many() (jobs/s)", bulk, None, "/s", _verdict(bulk, "enqueue_bulk")
        )
    )
    for pool, mine in dj["pools"].items():
        theirs = ((cel or {}).get("pools") or {}).get(pool, {})
        drain, their_drain = mine["drain"], theirs.get("drain")
        rows.append(
            _row(
                f"{pool}: drain, {mine['spec']} (jobs/s)",
                drain,
                their_drain,
                "/s",
                _verdict(drain, "drain"),
            )
        )
        if pool == "prefork" and cel is not None:
            reference = cel.get("drain_prefork")
            rows.append(
                _row(
                    f"{pool}: drain vs Celery 1 x prefork c=2",
                    drain,
                    reference,
                    "/s",
                    _versus(drain, reference, "beats Celery prefork"),
                )
            )
        for key, label in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
            rows.append(
                _row(
                    f"{pool}: pick-up latency {label} (ms)",
                    mine[key],
                    theirs.get(key),
                    "ms",
                    _verdict(mine[key], key),
                )
            )
    return _render(rows)


def _row(label: str, mine: float | None, theirs: float | None, unit: str, verdict: str) -> Row:
    ratio = f"{mine / theirs:.2f}x" if mine is not None and theirs else "-"
    return (label, _fmt(mine, unit), _fmt(theirs, unit), ratio, verdict)


def _verdict(value: float | None, key: str) -> str:
    target = TARGETS.get(key)
    if target is None or value is None:
        return ""
    met = value <= target[0] if key.endswith("_ms") else value >= target[0]
    return f"{target[1]} {'MET' if met else 'MISSED'}"


def _versus(mine: float | None, theirs: float | None, what: str) -> str:
    if mine is None or not theirs:
        return ""
    return f"{what} {'MET' if mine >= theirs else 'MISSED'}"


def _render(rows: list[Row]) -> str:
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
    if options.celery:
        setup_celery()  # before any phase: a failed install must not waste a djqueue run
    djq = run_pools(options) if options.pools else run_djqueue(options)
    cel = run_celery(options) if options.celery else None
    print(
        f"\n{options.jobs} jobs per phase, {options.latency_jobs} latency samples; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
    )
    print(pools_table(djq, cel) if options.pools else table(djq, cel, options))
    print("\nRatios: above 1 is djqueue faster for rates, below 1 for latencies.")
    checks = _checks(djq, cel)
    print("\nchecks: " + "; ".join(f"{name}: {'ok' if ok else 'FAILED'}" for name, ok in checks))
    if options.json:
        options.json.write_text(json.dumps({"djqueue": djq, "celery": cel}, indent=2) + "\n")
    return 0 if all(ok for _, ok in checks) else 1


def run_pools(options: argparse.Namespace) -> dict[str, Any]:
    """The per-pool mode's djqueue side, with the concurrency chosen for each pool shown."""
    specs = ", ".join(f"{pool} c={c}" for pool, c in pool_specs(options).items())
    _phase(f"pools: {options.workers} worker processes each; {specs}")
    return run_djqueue_pools(options)


def _checks(djq: dict[str, Any], cel: dict[str, Any] | None) -> list[tuple[str, bool]]:
    """Every drain ran each job exactly once: (what, whether it held)."""
    drains = {"": djq, **{f" {pool}": found for pool, found in djq.get("pools", {}).items()}}
    checks = [
        (f"djqueue{name} drain, all SUCCESS with attempt 1", bool(found["drain_ok"]))
        for name, found in drains.items()
        if "drain_ok" in found
    ]
    if cel:
        found_cel = {"": cel, **{f" {p}": f for p, f in (cel.get("pools") or {}).items()}}
        checks += [
            (f"Celery{name} {key}", bool(value))
            for name, figures in found_cel.items()
            for key, value in figures.items()
            if key.endswith("_ok")
        ]
    return checks


if __name__ == "__main__":
    sys.exit(main())
