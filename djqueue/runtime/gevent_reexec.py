"""Start ``runworker --pool gevent`` again, in the same process, with gevent patched first.

A stock ``manage.py`` imports Django before ``runworker`` reads ``--pool``, too late for
gevent's monkey-patching (see :mod:`djqueue.runtime.gevent_patch`). So ``runworker`` replaces
its process (``os.execv``: same pid, same environment, same standard streams) with::

    python [interpreter options] -m djqueue.runtime.gevent_reexec script|module TARGET [args]

which patches, then runs the original program again (``manage.py``, ``django-admin``
or ``python -m django``) with its original arguments. This module imports nothing but
the standard library before it patches.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Sequence

# Set in the new process, so that it never starts over a second time.
MARKER = "DJQUEUE_GEVENT_REEXEC"


def command(orig_argv: Sequence[str], argv: Sequence[str], executable: str) -> list[str] | None:
    """The command line that runs the program of ``orig_argv`` again under gevent.

    ``orig_argv`` is the interpreter's own command line (``sys.orig_argv``) and ``argv``
    the program's (``sys.argv``). None when the program cannot be started again: code
    given with ``-c``, or arguments that were changed after the start.
    """
    rest = list(argv[1:])
    if len(orig_argv) < len(rest) + 2 or list(orig_argv[len(orig_argv) - len(rest) :]) != rest:
        return None
    prefix = list(orig_argv[: len(orig_argv) - len(rest)])
    how = _program(prefix)
    if how is None:
        return None
    kind, target, options = how
    return [executable, *options, "-m", __name__, kind, target, *rest]


def _program(prefix: list[str]) -> tuple[str, str, list[str]] | None:
    """``(kind, target, interpreter options)`` of ``python [options] program``."""
    last = prefix[-1]
    if len(prefix) >= 3 and prefix[-2] == "-m":
        return "module", last, prefix[1:-2]
    if last.startswith("-m") and len(last) > 2:
        return "module", last[2:], prefix[1:-1]
    if len(prefix) < 2 or last.startswith("-") or "-c" in prefix[1:]:
        return None
    return "script", os.path.abspath(last), prefix[1:-1]


def main(args: Sequence[str] | None = None) -> None:
    """Patch, then run ``TARGET`` as the interpreter would have, with the given args."""
    kind, target, *rest = sys.argv[1:] if args is None else args
    from djqueue.runtime import gevent_patch  # standard library only; patches nothing by itself

    gevent_patch.patch()
    if kind == "module":
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
        return
    # As for ``python manage.py``: the script's directory comes first on the path.
    sys.path[0] = os.path.dirname(os.path.realpath(target))
    sys.argv = [target, *rest]
    runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
