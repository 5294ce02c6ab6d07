"""Percentiles read from bucket counts (djqueue.core.histogram)."""

from __future__ import annotations

import pytest

from djqueue.core import histogram


def _counts(**at: int) -> list[int]:
    counts = [0] * histogram.SIZE
    for index, n in at.items():
        counts[int(index[1:])] = n
    return counts


def test_empty_histogram_has_no_percentile() -> None:
    assert histogram.percentile([0] * histogram.SIZE, 0.5) is None


def test_percentile_is_interpolated_inside_its_bucket() -> None:
    # Bucket 10 holds [1 s, 2 s): the median of 10 durations there is about 1.5 s.
    assert histogram.percentile(_counts(b10=10), 0.5) == pytest.approx(1.5)


def test_percentile_never_passes_the_longest_duration() -> None:
    assert histogram.percentile(_counts(b10=10), 0.99, peak=1.2) == pytest.approx(1.2)
    # The last bucket (an hour or more) is open: its top is the peak.
    assert histogram.percentile(_counts(b21=1), 1.0, peak=7200.0) == pytest.approx(7200.0)


def test_histograms_add_up_bucket_by_bucket() -> None:
    assert histogram.added([_counts(b1=1), None, _counts(b1=2, b3=1)]) == _counts(b1=3, b3=1)


def test_fraction_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram.percentile(_counts(b1=1), 95)
