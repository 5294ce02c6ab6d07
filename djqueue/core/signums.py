"""The ``signal=`` of ``revoke(terminate=True, signal=...)``: a name or a number, checked.

Celery takes ``"SIGTERM"``, ``"TERM"``, ``"sigkill"`` or a number; so does djqueue. The
number is kept in the job's row, and a prefork worker sends that signal to the child
running the job (docs/stopping.md, "Which signal").
"""

from __future__ import annotations

import signal

# Signals a revocation may not ask for: by default they only pause a process, or do
# nothing to it, which would leave a revoked job holding its slot.
_REFUSED = {"SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCONT", "SIGCHLD", "SIGURG", "SIGWINCH"}


def parse(value: str | int | None) -> int | None:
    """The signal number ``value`` names (None stays None: the pool's own way).

    Raises ``ValueError`` saying what is wrong for anything else.
    """
    if value is None:
        return None
    try:
        if isinstance(value, str):
            name = value.strip().upper()
            found = signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
        elif isinstance(value, int) and not isinstance(value, bool):
            found = signal.Signals(value)
        else:
            raise TypeError
    except (KeyError, ValueError, TypeError):
        raise ValueError(
            f"signal {value!r} is not a signal name or number; give one such as "
            "'SIGTERM', 'SIGKILL' or 'SIGUSR1'"
        ) from None
    if found.name in _REFUSED:
        raise ValueError(
            f"signal {found.name} would not stop the job's process; revoke with "
            "'SIGTERM' or 'SIGKILL' (the default) to stop it"
        )
    return int(found)


def name(signum: int | None) -> str:
    """``"SIGTERM"`` for 15; the number as text for one this platform does not name."""
    if signum is None:
        return "SIGKILL"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
