"""The console's time series: rollups from real job rows, depth samples, one writer at a
time, and pruning (djqueue.db.series)."""

from __future__ import annotations

import datetime
from typing import Any

import psycopg
import pytest
from django.utils import timezone

from djqueue.core import histogram, states
from djqueue.db import series, sql
from djqueue.db.models import JobHour, JobMinute, QueueMinute, SeriesMark
from tests.factories import JobFactory, StartedJobFactory

pytestmark = pytest.mark.django_db

MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)


_START: list[datetime.datetime] = []


@pytest.fixture(autouse=True)
def _one_clock_per_test() -> None:
    """Every ``_minute()`` of a test counts from the same minute, even if the clock
    passes into the next one while the test runs."""
    _START[:] = [timezone.now().replace(second=0, microsecond=0)]


def _minute(ago: int) -> datetime.datetime:
    return _START[0] - ago * MINUTE


def _ended(
    at: datetime.datetime, runtime: float, wait: float, state: str = states.SUCCESS, **extra: Any
) -> Any:
    started = at - datetime.timedelta(seconds=runtime)
    return JobFactory(
        state=state,
        attempt=1,
        eta=started - datetime.timedelta(seconds=wait),
        started_at=started,
        finished_at=at,
        **extra,
    )


def _row(**key: Any) -> JobMinute:
    return JobMinute.objects.get(**key)


def test_rollup_counts_and_durations_per_minute_queue_task_and_outcome() -> None:
    minute = _minute(5)
    runtimes = [0.003, 0.004, 0.03, 0.04, 0.3, 0.4, 3.0, 4.0, 30.0, 40.0]
    for n, runtime in enumerate(runtimes):
        _ended(minute + datetime.timedelta(seconds=n), runtime, wait=runtime / 10)
    _ended(minute + datetime.timedelta(seconds=20), 1.5, 0.5, state=states.FAILURE)
    _ended(minute, 1.0, 0.0, queue="mail")
    JobFactory(state=states.REVOKED, finished_at=minute + datetime.timedelta(seconds=3))
    StartedJobFactory(retried_at=minute + datetime.timedelta(seconds=4), state=states.RETRY)
    _ended(_minute(4), 1.0, 0.0)  # the next minute

    done = series.rollup()

    assert done.ran and done.end in (_minute(-1), _minute(0), _minute(1))
    ok = _row(minute=minute, queue="default", outcome=states.SUCCESS)
    assert ok.count == 10
    assert ok.runtime_sum == pytest.approx(sum(runtimes))
    assert ok.runtime_max == pytest.approx(40.0)
    assert sum(ok.runtime_buckets) == 10
    assert ok.wait_sum == pytest.approx(sum(runtimes) / 10)
    # The median of the ten runtimes is between 0.3 and 3: the estimate is in the bucket
    # where the exact one is, and no percentile passes the longest runtime.
    median = histogram.percentile(ok.runtime_buckets, 0.5, ok.runtime_max)
    assert median is not None and 0.2 <= median <= 0.5
    assert histogram.percentile(ok.runtime_buckets, 1.0, ok.runtime_max) == pytest.approx(40.0)
    assert _row(minute=minute, outcome=states.FAILURE).count == 1
    assert _row(minute=minute, queue="mail").count == 1
    revoked = _row(minute=minute, outcome=states.REVOKED)
    assert (revoked.count, revoked.runtime_max, sum(revoked.runtime_buckets)) == (1, None, 0)
    assert _row(minute=minute, outcome=states.RETRY).count == 1
    assert _row(minute=_minute(4), outcome=states.SUCCESS).count == 1


def test_percentiles_from_many_rows_fall_in_the_exact_percentiles_bucket() -> None:
    minute = _minute(3)
    runtimes = [0.001 * 1.07**n for n in range(120)]  # 1 ms .. about 3.3 s
    for n, runtime in enumerate(runtimes):
        _ended(minute + datetime.timedelta(milliseconds=400 * n), runtime, wait=0.0)
    series.rollup()
    row = _row(minute=minute, outcome=states.SUCCESS)
    ordered = sorted(runtimes)
    for fraction in (0.5, 0.9, 0.99):
        exact = ordered[int(fraction * len(ordered)) - 1]
        estimate = histogram.percentile(row.runtime_buckets, fraction, row.runtime_max)
        assert estimate is not None
        index = sum(1 for bound in histogram.BOUNDS if bound <= exact)
        low = histogram.BOUNDS[index - 1] if index else 0.0
        assert low <= estimate <= histogram.BOUNDS[index], (fraction, exact, estimate)


def test_rollup_is_idempotent() -> None:
    minute = _minute(3)
    for n in range(5):
        _ended(minute + datetime.timedelta(seconds=n), 0.5, 0.1)
    first = series.rollup()
    rows = list(JobMinute.objects.values_list("minute", "queue", "outcome", "count"))
    assert series.rollup().start is None  # nothing new closed: nothing rewritten
    assert first.start is not None and first.end is not None
    series.rewrite_minutes(first.start, first.end)  # the same minutes once more
    again = list(JobMinute.objects.values_list("minute", "queue", "outcome", "count"))
    assert again == rows
    assert [row[3] for row in rows] == [5]


def test_each_minute_is_read_once_the_next_rollup_starts_at_the_mark() -> None:
    series.rollup()
    mark = SeriesMark.objects.get().until
    SeriesMark.objects.update(until=mark - MINUTE)  # as if the last minute had just closed
    _ended(mark - 2 * MINUTE + datetime.timedelta(seconds=30), 1.0, 0.0)  # read already
    _ended(mark - MINUTE + datetime.timedelta(seconds=30), 1.0, 0.0)
    again = series.rollup()
    assert (again.start, again.end) == (mark - MINUTE, mark)
    assert _row(minute=mark - MINUTE).count == 1
    assert not JobMinute.objects.filter(minute=mark - 2 * MINUTE).exists()


def _open_transaction(conn: psycopg.Connection[Any]) -> datetime.datetime:
    """Begin a transaction on ``conn`` (another session); when it began."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_a_minute_waits_for_a_transaction_that_began_before_it_ended(
    other_connection: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The current minute counts as settled, so that the test need not wait for it.
    monkeypatch.setattr(series, "SETTLE_SECONDS", -60.0)
    began = _open_transaction(other_connection)
    minute = began.replace(second=0, microsecond=0)
    held = series.rollup()
    assert held.end is not None and held.end <= minute
    # A job that transaction ended, dated when it began, commits after that rollup.
    _ended(began, 1.0, 0.0)
    other_connection.commit()
    done = series.rollup()
    assert done.end is not None and done.end > minute
    assert _row(minute=minute).count == 1


def test_a_transaction_left_open_holds_the_series_back_for_a_bounded_time(
    other_connection: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series, "SETTLE_SECONDS", -60.0)
    monkeypatch.setattr(series, "LONGEST_WAIT_SECONDS", -60.0)  # as if it had passed
    began = _open_transaction(other_connection)
    done = series.rollup()
    assert done.end is not None and done.end > began


def test_hours_add_up_their_minutes_and_serve_reads_of_whole_hours() -> None:
    hour = _START[0].replace(minute=0) - 3 * HOUR
    for ago, runtime in ((0, 0.5), (25, 2.0), (59, 40.0)):
        _ended(hour + ago * MINUTE + datetime.timedelta(seconds=5), runtime, 0.1)
    _ended(hour + HOUR + datetime.timedelta(seconds=5), 0.5, 0.1)
    series.rewrite_minutes(hour, hour + 2 * HOUR)
    row = JobHour.objects.get(hour=hour)
    assert (row.count, row.runtime_max) == (3, pytest.approx(40.0))
    assert row.runtime_sum == pytest.approx(42.5)
    assert sum(row.runtime_buckets) == 3
    assert JobHour.objects.get(hour=hour + HOUR).count == 1
    # A read over whole hours takes them from the hours table: with the minutes gone,
    # it still counts their jobs; the part of a window outside whole hours, from minutes.
    JobMinute.objects.filter(minute__lt=hour + HOUR).delete()
    (total,) = series.task_totals(hour, hour + HOUR)
    assert (total.count, sum(total.runtime_buckets)) == (3, 3)
    assert series.task_totals(hour + 10 * MINUTE, hour + HOUR) == []
    binned = series.outcomes_by_bin(hour, hour + 2 * HOUR, 3600)
    assert [(at, n) for at, _, n in binned] == [(hour, 3), (hour + HOUR, 1)]


def test_a_long_gap_is_caught_up_in_bounded_steps() -> None:
    SeriesMark.objects.create(name="jobs", until=_minute(60))
    first = series.rollup()
    assert first.start == _minute(60)
    assert first.end is not None and first.end - first.start == series.MAX_MINUTES * MINUTE
    assert SeriesMark.objects.get().until == first.end


def test_one_rollup_at_a_time(other_connection: psycopg.Connection[Any]) -> None:
    _ended(_minute(3), 0.5, 0.1)
    other_connection.execute(sql.TRY_ROLLUP_LOCK, [sql.ROLLUP_LOCK])  # another worker's
    assert series.rollup() == series.Rolled(ran=False)
    assert not JobMinute.objects.exists() and not QueueMinute.objects.exists()
    other_connection.rollback()  # its transaction ends: the lock is free
    assert series.rollup().ran
    assert _row(minute=_minute(3)).count == 1


def test_queue_depth_is_sampled_per_queue_and_over_all_queues() -> None:
    long_ago = timezone.now() - datetime.timedelta(seconds=90)
    JobFactory.create_batch(3, eta=long_ago)
    JobFactory(queue="mail", eta=long_ago)
    JobFactory(queue="mail", eta=timezone.now() + datetime.timedelta(hours=1))
    StartedJobFactory(queue="mail")
    # Jobs with limits wait in an index of their own: counted with the others.
    JobFactory(queue="limited", gated=True, eta=long_ago)
    series.rollup()
    sampled = {row.queue: row for row in QueueMinute.objects.all()}
    assert (sampled["default"].waiting, sampled["default"].running) == (3, 0)
    assert sampled["default"].oldest_seconds is not None
    assert sampled["default"].oldest_seconds >= 89
    assert (sampled["mail"].waiting, sampled["mail"].scheduled, sampled["mail"].running) == (
        1,
        1,
        1,
    )
    assert (sampled["limited"].waiting, sampled["limited"].running) == (1, 0)
    assert (sampled[""].waiting, sampled[""].scheduled, sampled[""].running) == (5, 1, 1)


def test_an_empty_queue_table_is_sampled_too() -> None:
    series.rollup()
    assert list(QueueMinute.objects.values_list("queue", "waiting")) == [("", 0)]


def test_rows_older_than_the_retention_are_pruned(settings: Any) -> None:
    settings.DJQUEUE = {"SERIES_RETENTION_SECONDS": 3600}
    old, recent = _minute(61), _minute(30)
    for minute in (old, recent):
        JobMinute.objects.create(
            minute=minute, queue="q", task_name="t", outcome="SUCCESS", count=1
        )
        QueueMinute.objects.create(minute=minute, queue="", waiting=0, scheduled=0, running=0)
    series.rollup()
    assert list(JobMinute.objects.filter(queue="q").values_list("minute", flat=True)) == [recent]
    assert old not in QueueMinute.objects.values_list("minute", flat=True)


def test_reads_add_up_minutes_into_bins_and_tasks() -> None:
    for ago in (5, 4, 3):
        _ended(_minute(ago), 0.5, 0.2)
    _ended(_minute(3), 2.0, 0.2, state=states.FAILURE)
    series.rollup()
    start, end = _minute(6), _minute(0)
    bins = series.outcomes_by_bin(start, end, 180)
    assert [(at - start, outcome, n) for at, outcome, n in bins] == [
        (datetime.timedelta(0), states.SUCCESS, 2),
        (3 * MINUTE, states.FAILURE, 1),
        (3 * MINUTE, states.SUCCESS, 1),
    ]
    totals = {t.outcome: t for t in series.task_totals(start, end)}
    assert totals[states.SUCCESS].count == 3
    assert sum(totals[states.SUCCESS].runtime_buckets) == 3
    assert totals[states.FAILURE].runtime_max == pytest.approx(2.0)
