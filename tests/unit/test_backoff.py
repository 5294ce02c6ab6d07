from djqueue.core import backoff


def test_without_backoff_the_default_delay_is_used() -> None:
    assert backoff.countdown(5, False, 600, True, 180) == 180


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff.countdown(n, 2, 30, False, 180) for n in range(6)]
    assert delays == [2, 4, 8, 16, 30, 30]


def test_jitter_stays_within_the_backoff() -> None:
    for _ in range(200):
        delay = backoff.countdown(3, True, 600, True, 180)
        assert 0 <= delay <= 8
        assert delay == int(delay)
