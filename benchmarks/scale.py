"""The scale run: worker hosts, PgBouncer, failover, size, sustained load and the
single-machine ceiling, one after another, in one table (docs/scaling.md).

    .venv/bin/python benchmarks/scale.py --quick            # minutes: small sizes
    .venv/bin/python benchmarks/scale.py --json /tmp/scale.json    # the full run

Each part runs as a process of its own, as its own command would (each prints its
figures and writes them as JSON, which this reads): ``pytest -m hosts`` (tests/hosts)
and ``pytest -m failover`` (tests/chaos/test_failover.py) with their full options
unless ``--quick``, ``pooler.py``, ``size.py``, ``sustained.py``, and for the ceiling
``bench.py --pools threads,prefork,gevent --celery`` and ``ceiling.py``. A part whose
program or harness is missing here is skipped with a note in the table; a part that
fails says so in its row and the rest go on. Every part's output is kept in a log
directory whose name is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common, load  # noqa: E402

PARTS = ("hosts", "pgbouncer", "failover", "size", "sustained", "ceiling")
PEERS = ("celery-redis", "celery-rabbitmq", "procrastinate")
HEADER = (
    "part",
    "figure",
    "djqueue",
    "Celery+Redis",
    "Celery+RabbitMQ",
    "procrastinate",
    "target / note",
)
Row = tuple[str, str, str, str, str, str, str]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short steps")
    parser.add_argument("--only", default=",".join(PARTS), help=f"of {','.join(PARTS)}")
    parser.add_argument("--json", type=Path, help="also write every row and raw figure here")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per part (7200)")
    options = parser.parse_args(argv)
    options.parts = [part.strip() for part in options.only.split(",") if part.strip()]
    unknown = set(options.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    return options


class Part:
    """One part's run: its log directory, its processes, its rows."""

    def __init__(self, name: str, logs: Path, options: argparse.Namespace) -> None:
        self.name, self.logs, self.options = name, logs, options
        self.rows: list[Row] = []
        self.raw: dict[str, Any] = {}

    def row(self, figure: str, mine: str, *peers: str, note: str = "") -> None:
        cells = [*peers, "-", "-", "-"][:3]
        self.rows.append((self.name, figure, mine, cells[0], cells[1], cells[2], note))

    def skip(self, why: str) -> None:
        self.row("-", "-", note=f"skipped: {why}")

    def run(self, command: list[str], log: str, env: dict[str, str] | None = None) -> int:
        """Run ``command`` from the repository root, its output into ``log``."""
        with (self.logs / log).open("wb") as out:
            try:
                done = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=env or common.child_env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=self.options.timeout,
                )
            except subprocess.TimeoutExpired:
                return -1
        return done.returncode

    def json_of(
        self, command: list[str], log: str, env: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Run ``command`` with ``--json FILE`` added; its exit status and that file."""
        path = self.logs / f"{log}.json"
        code = self.run([*command, "--json", str(path)], f"{log}.log", env)
        return code, json.loads(path.read_text()) if path.exists() else None


# Worker hosts and failover: the tests behind their markers ------------------------------


def pytest_part(part: Part, path: str, marker: str, full_option: str) -> None:
    """Run the tests at ``path`` marked ``marker`` and turn their figures into rows."""
    if not (ROOT / path).exists():
        part.skip(f"{path} is not in this checkout")
        return
    command = [sys.executable, "-m", "pytest", path, "-m", marker, "-q", "-rs"]
    if not part.options.quick:
        command.append(full_option)
    env = common.child_env()
    env.setdefault("DJQUEUE_TEST_DATABASE", "test_djqueue_scale")
    code = part.run(command, f"{part.name}.log", env)
    output = (part.logs / f"{part.name}.log").read_text(errors="replace")
    figures = figures_section(output)
    part.raw = {"exit": code, "figures": figures}
    verdict = {0: "tests passed", 5: "no test ran"}.get(code, f"tests FAILED (exit {code})")
    skipped = re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", output)
    if skipped and not figures:
        part.skip(skipped[0])
        return
    if not figures:
        part.row("-", "-", note=verdict)
    for test, values in figures.items():
        # The test's name only when there are several to tell apart.
        prefix = f"{_short(test)}: " if len(figures) > 1 else ""
        for name, value in values.items():
            part.row(f"{prefix}{name}", value, note=verdict)


def figures_section(output: str) -> dict[str, dict[str, str]]:
    """The figures a hosts or chaos run prints at its end: {test: {name: value}}."""
    found: dict[str, dict[str, str]] = {}
    inside, test = False, ""
    for line in output.splitlines():
        if re.match(r"^=+ .*figures =+$", line):
            inside = True
            continue
        if inside and line.startswith("="):
            inside = False
        if not inside or not line.strip():
            continue
        if line.startswith("    "):
            name, _, value = line.strip().rpartition(" ")
            found.setdefault(test, {})[name.strip()] = value
        else:
            test = line.strip()
    return found


def _short(test: str) -> str:
    return " ".join(test.removeprefix("test_").split("_")[:4])


def hosts(part: Part) -> None:
    pytest_part(part, "tests/hosts", "hosts", "--hosts-full")


def failover(part: Part) -> None:
    pytest_part(part, "tests/chaos/test_failover.py", "failover", "--failover-full")


# PgBouncer ------------------------------------------------------------------------------


def pgbouncer(part: Part) -> None:
    from benchmarks import pooler

    if pooler.program() is None:
        part.skip("pgbouncer not installed (apt-get install pgbouncer)")
        return
    jobs = "5000" if part.options.quick else "20000"
    rounds = "1" if part.options.quick else "2"
    command = [sys.executable, "benchmarks/pooler.py", "--jobs", jobs, "--rounds", rounds]
    code, runs = part.json_of(command, "pgbouncer")
    part.raw = {"exit": code, "runs": runs}
    if code or not runs:
        part.row("-", "-", note=f"failed (exit {code}), see pgbouncer.log")
        return
    direct, pooled = pooler.medians(runs["direct"]), pooler.medians(runs["pgbouncer"])
    for key, label, unit in pooler.FIGURES:
        shown = _fmt(direct[key], unit), _fmt(pooled[key], unit)
        ratio = pooled[key] / direct[key] if direct[key] else float("nan")
        part.row(f"{label}: direct, PgBouncer", f"{shown[0]}, {shown[1]} ({ratio:.2f}x)")


# Size -----------------------------------------------------------------------------------


def size(part: Part) -> None:
    if not (ROOT / "benchmarks" / "size.py").exists():
        part.skip("benchmarks/size.py is not in this checkout")
        return
    command = [sys.executable, "benchmarks/size.py", "--databases", "bench_scale_size"]
    if part.options.quick:
        # A small table; the full run takes size.py's own defaults (10 M + 1 M).
        command.append("--quick")
    code, figures = part.json_of(command, "size")
    part.raw = {"exit": code, "figures": figures}
    if not figures:
        part.row("-", "-", note=f"failed (exit {code}), see size.log")
        return
    drain = figures.get("drain", {}).get("median", {})
    if len(drain) == 2:
        empty, full = drain.values()
        for key, label in (
            ("drain", "drain (jobs/s)"),
            ("pickup_p50_ms", "pick-up p50 (ms)"),
            ("pickup_p99_ms", "pick-up p99 (ms)"),
        ):
            if key in empty and key in full:
                unit = "ms" if key.endswith("_ms") else "/s"
                ratio = full[key] / empty[key] if empty[key] else float("nan")
                part.row(
                    f"{label}: empty, full table",
                    f"{_fmt(empty[key], unit)}, {_fmt(full[key], unit)} ({ratio:.2f}x)",
                    note="within 10 % of empty",
                )
    for phase in ("prune", "xmin"):
        for key, value in (figures.get(phase) or {}).items():
            if key != "windows" and not isinstance(value, (dict, list)):
                part.row(f"{phase}: {key}", _plain(value))
    for step, cost in (figures.get("partitions") or {}).items():
        shown = ", ".join(f"{_plain(value)} {name}" for name, value in cost.items())
        part.row(f"partitions: {step}", shown)
    if code:
        part.row("-", "-", note=f"size.py exit {code}, see size.log")


# Sustained load -------------------------------------------------------------------------


def sustained(part: Part) -> None:
    command = [sys.executable, "benchmarks/sustained.py"]
    if part.options.quick:
        command.append("--quick")
    code, results = part.json_of(command, "sustained")
    part.raw = {"exit": code, "results": results}
    if not results:
        part.row("-", "-", note=f"failed (exit {code}), see sustained.log")
        return
    systems = ("djqueue", *PEERS)
    tops = {name: load.shown((results.get(name) or {}).get("steps") or []) for name in systems}

    def cells(show: Callable[[dict[str, Any]], str]) -> list[str]:
        shown = []
        for name in systems:
            found, (top, passed) = results.get(name) or {}, tops[name]
            if found.get("error"):
                shown.append("error")
            elif top is None:
                shown.append("-")
            else:
                shown.append(show(top) if passed else f"({show(top)})")
        return shown

    part.row(
        "highest sustained rate (jobs/s)",
        *cells(lambda top: f"{top['rate']:,.0f}"),
        note="backlog bounded, p99 pick-up < 50 ms; (in brackets): none passed, the "
        "first step's figures",
    )
    part.row(
        "  pick-up p50 / p99 there (ms)",
        *cells(lambda top: f"{top['pickup_p50_ms']:.1f} / {top['pickup_p99_ms']:.1f}"),
    )
    part.row(
        "  CPU s per 1,000 jobs: workers + broker",
        *cells(lambda top: f"{top['cpu_workers_per_1000']:.2f} + {top['cpu_server_per_1000']:.2f}"),
        note="broker: PostgreSQL backends, Redis or RabbitMQ",
    )
    part.row(
        "  WAL bytes per job",
        *cells(
            lambda top: f"{top['wal_bytes_per_job']:,.0f}" if "wal_bytes_per_job" in top else "n/a"
        ),
    )
    part.row(
        "  commits per job",
        *cells(lambda top: f"{top['commits_per_job']:.2f}" if "commits_per_job" in top else "n/a"),
        note=results.get("server", ""),
    )


# The single-machine ceiling ----------------------------------------------------------------


def ceiling(part: Part) -> None:
    jobs = "5000" if part.options.quick else "20000"
    latency = "100" if part.options.quick else "200"
    command = [sys.executable, "benchmarks/bench.py", "--jobs", jobs, "--latency-jobs", latency]
    command += ["--pools", "threads,prefork,gevent", "--celery"]
    # A database of its own: bench.py empties its tables between phases.
    env = common.child_env()
    env.setdefault("DJQUEUE_BENCH_DB", "djqueue_bench_scale")
    code, found = part.json_of(command, "bench", env)
    part.raw["bench"] = {"exit": code, "figures": found}
    if found:
        bench_rows(part, found["djqueue"], found.get("celery") or {})
    else:
        part.row("bench.py", "-", note=f"failed (exit {code}), see bench.log")
    command = [sys.executable, "benchmarks/ceiling.py", "--jobs", jobs]
    code, profile = part.json_of(command, "ceiling")
    part.raw["profile"] = {"exit": code, "figures": profile}
    if not profile:
        part.row("ceiling.py", "-", note=f"failed (exit {code}), see ceiling.log")
        return
    part.row(
        f"data layer alone, batches of {profile['batch']} (jobs/s)",
        _fmt(profile["data_layer"], "/s"),
        note=f"CPU per job: client {profile['data_layer_client_us']:.0f} µs, "
        f"server {profile['data_layer_server_us']:.0f} µs",
    )
    part.row(
        f"drain {profile['spec']}: CPU per job, workers + server (µs)",
        f"{profile['worker_us_per_job']:.0f} + {profile['server_us_per_job']:.0f}",
        note=f"{profile['jobs_per_claim']:.1f} jobs per claim, "
        f"{profile['outcomes_per_flush']:.1f} per flush",
    )
    for phase, share in ((profile.get("shares") or {}).get("cpu") or {}).items():
        micros = share * profile["worker_us_per_job"]
        part.row(f"  worker CPU in {phase} (µs/job)", f"{micros:.1f} ({share:.0%})")


def bench_rows(part: Part, mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """bench.py's figures against issue 14's targets, Celery+Redis beside them."""

    def versus(label: str, a: float | None, b: float | None, unit: str, target: str) -> None:
        part.row(label, _fmt(a, unit), _fmt(b, unit), note=target)

    one, their_one = mine.get("enqueue_one"), theirs.get("enqueue_one")
    met = one is not None and their_one and one >= 1.5 * their_one
    versus("enqueue one by one (jobs/s)", one, their_one, "/s", _met("≥ 1.5x Celery", met))
    targets = {"threads": 25_000, "gevent": 25_000, "prefork": 12_000}
    for pool, found in (mine.get("pools") or {}).items():
        other = (theirs.get("pools") or {}).get(pool, {})
        target = targets.get(pool)
        drain = found.get("drain")
        versus(
            f"{pool}: drain, {found.get('spec', '')} (jobs/s)",
            drain,
            other.get("drain"),
            "/s",
            _met(f"≥ {target:,}", drain is not None and drain >= target) if target else "",
        )
        p50, their_p50 = found.get("latency_p50_ms"), other.get("latency_p50_ms")
        ok = p50 is not None and their_p50 is not None and p50 <= 0.7 * their_p50
        versus(f"{pool}: pick-up p50 (ms)", p50, their_p50, "ms", _met("≤ 0.7x Celery", ok))
        p99, their_p99 = found.get("latency_p99_ms"), other.get("latency_p99_ms")
        ok = p99 is not None and their_p99 is not None and p99 <= their_p99
        versus(f"{pool}: pick-up p99 (ms)", p99, their_p99, "ms", _met("≤ Celery", ok))


def _met(target: str, met: Any) -> str:
    return f"{target} {'MET' if met else 'MISSED'}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if unit == "ms" else f"{value:,.0f}"


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


RUNNERS: dict[str, Callable[[Part], None]] = {
    "hosts": hosts,
    "pgbouncer": pgbouncer,
    "failover": failover,
    "size": size,
    "sustained": sustained,
    "ceiling": ceiling,
}


def render(rows: list[Row]) -> str:
    """The rows as one plain-text table."""
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(HEADER))
    lines[:0] = [head, "  ".join("-" * width for width in widths)]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for and print the table."""
    options = parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="djqueue-scale-"))
    started, load_average = time.time(), os.getloadavg()[0]
    print(f"-- scale run, logs in {logs}", file=sys.stderr, flush=True)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for name in options.parts:
        print(f"-- scale: {name}", file=sys.stderr, flush=True)
        part = Part(name, logs, options)
        part_started = time.time()
        try:
            RUNNERS[name](part)
        except Exception as exc:  # one part's failure must not lose the others
            part.row("-", "-", note=f"failed: {str(exc).splitlines()[0][:120]}")
        part.raw["seconds"] = time.time() - part_started
        rows += part.rows
        raw[name] = part.raw
    mode = "quick" if options.quick else "full"
    print(
        f"\nScale run ({mode}): {', '.join(options.parts)}; {os.cpu_count()} CPUs; load "
        f"average {load_average:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
        f"{time.time() - started:.0f} s; logs in {logs}\n"
    )
    print(render(rows))
    if options.json:
        options.json.write_text(json.dumps({"rows": rows, "raw": raw}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
