"""Fixed duration buckets for runtime and wait histograms, and percentiles read from them.

The time series (``djqueue.db.series``) stores, per minute, how many durations fell in
each bucket. Counts of any rows can be added up bucket by bucket, so percentiles over a
week, a queue or a task come from a few hundred small arrays, never from the jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Upper bounds in seconds, roughly 1-2-5 per decade: an estimate is at worst off by the
# width of its bucket. A duration ``d`` falls in bucket ``i`` when BOUNDS[i-1] <= d <
# BOUNDS[i] (PostgreSQL's width_bucket); the last bucket holds everything from an hour on.
BOUNDS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
SIZE = len(BOUNDS) + 1


def added(histograms: Iterable[Sequence[int] | None]) -> list[int]:
    """The bucket-by-bucket sum of ``histograms`` (None and short arrays count as zeros)."""
    total = [0] * SIZE
    for histogram in histograms:
        for index, count in enumerate(histogram or ()):
            total[index] += count
    return total


def percentile(
    histogram: Sequence[int], fraction: float, peak: float | None = None
) -> float | None:
    """The ``fraction`` (0..1) percentile of the durations counted in ``histogram``.

    Interpolated linearly inside the bucket it falls in, and never above ``peak`` (the
    longest duration seen, when known). None when the histogram is empty.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be between 0 and 1, not {fraction!r}")
    total = sum(histogram)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = BOUNDS[index - 1] if index > 0 else 0.0
            high = BOUNDS[index] if index < len(BOUNDS) else (peak or low)
            estimate = low + (high - low) * max(0.0, rank - seen) / count
            return min(estimate, peak) if peak is not None else estimate
        seen += count
    return peak
