"""The scale run's own logic: the open-loop producer, a step's verdict, the profile's
phases and the figures read from a test run's output (no benchmark runs)."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence

from benchmarks import ceiling, load, scale, size


class Instant:
    """A system whose every job runs as it is sent, ``delay_ms`` after it was due."""

    name = "instant"

    def __init__(self, delay_ms: float = 1.0, lose: int = 0) -> None:
        self.delay_ms, self.lose = delay_ms, lose
        self.sent = 0

    def send(self, scheduled: Sequence[float]) -> None:
        self.sent += len(scheduled)

    def finished(self) -> int:
        return self.sent - self.lose

    def pickups_ms(self) -> tuple[list[float], int]:
        return [self.delay_ms] * (self.sent - self.lose), self.lose

    def reset(self) -> None:
        self.sent = 0

    def worker_pids(self) -> list[int]:
        return [os.getpid()]

    def server_pids(self) -> list[int]:
        return []

    def counters(self) -> dict[str, float]:
        return {}


def test_the_producer_sends_every_job_on_its_schedule_in_rounds() -> None:
    calls: list[Sequence[float]] = []
    sent = load.open_loop(200, 0.5, calls.append)
    assert sent.jobs == 100 == sum(len(call) for call in calls)
    due = [at for call in calls for at in call]
    # Each job carries the moment it was due, 5 ms apart.
    assert due == sorted(due)
    assert all(abs((b - a) - 0.005) < 1e-6 for a, b in itertools.pairwise(due))


def test_a_slow_send_makes_the_next_round_bigger_not_the_rate_lower() -> None:
    calls: list[int] = []

    def slow(scheduled: Sequence[float]) -> None:
        calls.append(len(scheduled))
        time.sleep(0.05)

    sent = load.open_loop(1000, 0.3, slow)
    assert sent.jobs == 300 == sum(calls)
    assert max(calls) > 1


def test_a_step_passes_when_every_job_ran_soon() -> None:
    step = load.run_step(Instant(delay_ms=2.0), 100, 0.2, grace=1.0)
    assert step["passed"], step
    assert step["sent"] == step["ran"] == 20
    assert step["pickup_p99_ms"] == 2.0


def test_a_step_fails_on_a_slow_pick_up_or_a_job_not_run() -> None:
    slow = load.run_step(Instant(delay_ms=80.0), 100, 0.2, grace=0.1)
    assert not slow["passed"]
    assert slow["why"] == "p99 80 ms"
    lost = load.run_step(Instant(lose=1), 100, 0.2, grace=0.1)
    assert not lost["passed"]
    assert "1 not run" in lost["why"]
    # A job that never ran is later than any that did.
    assert lost["pickup_p99_ms"] == float("inf")


def test_steps_stop_at_the_first_failure_and_the_best_is_the_highest_pass() -> None:
    steps = [
        {"rate": 100.0, "passed": True},
        {"rate": 500.0, "passed": True},
        {"rate": 1000.0, "passed": False},
    ]
    assert load.best(steps) == steps[1]
    assert load.shown(steps) == (steps[1], True)
    assert load.shown(steps[2:]) == (steps[2], False)
    assert load.shown([]) == (None, False)


def test_cpu_seconds_of_this_process_grow_with_its_work() -> None:
    before = load.cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    assert load.cpu_seconds([os.getpid()]) - before >= 0.05


def test_profile_samples_go_to_the_phase_of_their_innermost_djqueue_frame() -> None:
    def stack(*frames: str) -> list[str]:
        return ["<module> (manage.py:15)", *frames]

    claim = stack(
        "Worker.tick (djqueue/runtime/worker.py:265)",
        "Claimer.claim (djqueue/runtime/claims.py:60)",
        "_claim_plain (djqueue/db/claims.py:71)",
        "Connection.wait (psycopg/connection.py:495)",
    )
    flush = stack(
        "Worker.tick (djqueue/runtime/worker.py:270)",
        "OutcomeWriter.flush (djqueue/runtime/outcomes.py:101)",
        "OutcomeWriter._write (djqueue/runtime/outcomes.py:114)",
        "finish (djqueue/db/finishing.py:36)",
    )
    submit = stack("Claimer.submit (djqueue/runtime/claims.py:83)")
    run = stack(
        "JobRunner.__call__ (djqueue/runtime/runner.py:35)",
        "_execute (djqueue/runtime/runner.py:92)",
        "execute (djqueue/core/executor.py:70)",
        "noop (benchmarks/benchapp/tasks.py:12)",
    )
    report = stack(
        "JobRunner.__call__ (djqueue/runtime/runner.py:35)",
        "JobRunner.report (djqueue/runtime/runner.py:77)",
    )
    heartbeat = stack("Leases.run (djqueue/runtime/leases.py:90)")
    assert ceiling.phase_of(claim) == "claim"
    assert ceiling.phase_of(flush) == "flush"
    assert ceiling.phase_of(submit) == "hand-off"
    assert ceiling.phase_of(run) == "executor"
    assert ceiling.phase_of(report) == "outcome"
    assert ceiling.phase_of(heartbeat) == "background"
    assert ceiling.phase_of(stack("json.dumps (json/__init__.py:231)")) == "other"


def test_the_figures_a_test_run_prints_are_read_by_test() -> None:
    output = """
........                                                                 [100%]
============================= worker hosts figures =============================
test_a_host_cut_off
    jobs held by the host when cut off           8
    seconds until they all ended SUCCESS         5.94
test_beat_moves
    periodic slots sent twice                    0
=========================== short test summary info ============================
SKIPPED [1] tests/hosts/test_hosts.py:12: not here
8 passed in 30.00s
"""
    assert scale.figures_section(output) == {
        "test_a_host_cut_off": {
            "jobs held by the host when cut off": "8",
            "seconds until they all ended SUCCESS": "5.94",
        },
        "test_beat_moves": {"periodic slots sent twice": "0"},
    }


def test_the_scale_table_has_a_column_for_each_peer() -> None:
    rows: list[scale.Row] = [
        ("sustained", "highest sustained rate (jobs/s)", "500", "100", "100", "-", "")
    ]
    lines = scale.render(rows).splitlines()
    assert lines[0].split() == [
        "part",
        "figure",
        "djqueue",
        "Celery+Redis",
        "Celery+RabbitMQ",
        "procrastinate",
        "target",
        "/",
        "note",
    ]
    assert lines[2].split()[-4:] == ["500", "100", "100", "-"]


def test_size_quick_takes_small_sizes_and_keeps_the_options_given() -> None:
    full, quick = size.parse_args([]), size.parse_args(["--quick"])
    assert (full.finished, full.waiting) == (10_000_000, 1_000_000)
    assert {name: getattr(quick, name) for name in size.QUICK} == size.QUICK
    given = size.parse_args(["--quick", "--finished", "1000000", "--waiting", "100000"])
    assert (given.finished, given.waiting, given.jobs) == (1_000_000, 100_000, 5_000)
