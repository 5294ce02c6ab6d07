"""benchmarks/compare.py: the turns it takes and how it reads a change (no benchmark runs)."""

from benchmarks import common, compare

RUN = {
    "enqueue_one": 100.0,
    "enqueue_bulk": 1000.0,
    "pools": {
        "threads": {
            "spec": "2 x threads c=4",
            "drain": 500.0,
            "latency_p50_ms": 2.0,
            "latency_p99_ms": 4.0,
        }
    },
}


def test_turns_alternate_abba() -> None:
    turns = list(common.in_turns(3, "before", "after"))
    assert turns == [
        (0, "before"),
        (0, "after"),
        (1, "after"),
        (1, "before"),
        (2, "before"),
        (2, "after"),
    ]


def test_every_figure_of_a_per_pool_run_is_read() -> None:
    assert compare.figures(RUN) == {
        "enqueue one by one (jobs/s)": 100.0,
        "bulk enqueue (jobs/s)": 1000.0,
        "threads: drain, 2 x threads c=4 (jobs/s)": 500.0,
        "threads: pick-up latency p50 (ms)": 2.0,
        "threads: pick-up latency p99 (ms)": 4.0,
    }


def test_worse_is_a_lower_rate_or_a_longer_latency_beyond_five_percent() -> None:
    assert compare.worse("drain (jobs/s)", 100.0, 94.0)
    assert not compare.worse("drain (jobs/s)", 100.0, 96.0)
    assert not compare.worse("drain (jobs/s)", 100.0, 150.0)
    assert compare.worse("latency p50 (ms)", 2.0, 2.2)
    assert not compare.worse("latency p50 (ms)", 2.0, 2.05)
    assert not compare.worse("latency p50 (ms)", 2.0, 1.0)


def test_the_table_shows_medians_and_marks_what_got_worse() -> None:
    before = [compare.figures(RUN), compare.figures(RUN)]
    slower = compare.figures(RUN)
    slower["threads: drain, 2 x threads c=4 (jobs/s)"] = 400.0
    shown, any_worse = compare.table({"before": before, "after": [slower]})
    assert any_worse
    drain = next(line for line in shown.splitlines() if "drain" in line)
    assert "500" in drain and "400" in drain and "-20.0%" in drain and "WORSE" in drain
    latency = next(line for line in shown.splitlines() if "p50" in line)
    assert "+0.0%" in latency and "WORSE" not in latency

    _, any_worse = compare.table({"before": before, "after": before})
    assert not any_worse
