"""The ``signal=`` of revoke: Celery's spellings, and clear errors."""

from __future__ import annotations

import signal

import pytest

from djqueue.core import signums


@pytest.mark.parametrize(
    ("given", "number"),
    [
        (None, None),
        ("SIGTERM", signal.SIGTERM),
        ("TERM", signal.SIGTERM),
        ("sigkill", signal.SIGKILL),
        (" usr1 ", signal.SIGUSR1),
        (int(signal.SIGQUIT), signal.SIGQUIT),
        (signal.SIGHUP, signal.SIGHUP),
    ],
)
def test_names_and_numbers_as_celery_takes_them(given: object, number: int | None) -> None:
    assert signums.parse(given) == number  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["SIGNOPE", "", 0, 999, 1.5, True, b"TERM"])
def test_what_is_not_a_signal_says_so(given: object) -> None:
    with pytest.raises(ValueError, match="is not a signal name or number; give one such as"):
        signums.parse(given)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["SIGSTOP", "TSTP", "SIGCONT", "SIGCHLD", "SIGWINCH"])
def test_signals_that_would_leave_the_job_running_are_refused(given: str) -> None:
    with pytest.raises(ValueError, match="would not stop the job's process"):
        signums.parse(given)


def test_names_for_logs_and_docs() -> None:
    assert signums.name(int(signal.SIGTERM)) == "SIGTERM"
    assert signums.name(None) == "SIGKILL"
