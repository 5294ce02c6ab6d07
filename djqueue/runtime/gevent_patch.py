"""Apply gevent's monkey-patching early, and only for ``runworker --pool gevent``.

Patching must come before Django, psycopg or the project's code is imported: psycopg
picks its way of waiting for the server when it is first imported, and only a
patched ``select`` makes that wait yield to other greenlets. So this module imports
nothing but the standard library, and a project's ``manage.py`` calls
:func:`patch_if_requested` before it imports Django::

    from djqueue.runtime import gevent_patch

    gevent_patch.patch_if_requested()

``python -m djqueue.gevent_worker`` does the same without touching ``manage.py``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

POOL_OPTIONS = ("--pool", "-P")
# Set to "gevent" to patch whatever the command line says (for wrappers such as
# process managers that cannot change the arguments).
ENV_VARIABLE = "DJQUEUE_GEVENT_PATCH"


def requested(argv: Sequence[str]) -> bool:
    """Whether ``argv`` runs ``runworker`` with the gevent pool."""
    if "runworker" not in argv:
        return False
    return pool_option(argv) == "gevent"


def pool_option(argv: Sequence[str]) -> str | None:
    """The value given to ``--pool``/``-P`` in ``argv`` (the last one wins), or None."""
    found: str | None = None
    for index, arg in enumerate(argv):
        if arg in POOL_OPTIONS and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith("--pool="):
            found = arg.removeprefix("--pool=")
        elif arg.startswith("-P") and len(arg) > 2 and not arg.startswith("--"):
            found = arg[2:].removeprefix("=")
    return found


def patch_if_requested(argv: Sequence[str] | None = None) -> bool:
    """Patch when ``argv`` (default: ``sys.argv``) asks for the gevent pool.

    Also patches when the ``DJQUEUE_GEVENT_PATCH`` environment variable is ``gevent``.
    Returns whether patching is in place afterwards.
    """
    args = sys.argv if argv is None else argv
    if requested(args) or os.environ.get(ENV_VARIABLE, "").lower() == "gevent":
        patch()
        return True
    return is_patched()


def patch() -> None:
    """Apply ``gevent.monkey.patch_all()``; a clear ImportError when gevent is missing."""
    try:
        monkey = importlib.import_module("gevent.monkey")
    except ImportError as exc:
        raise ImportError("the gevent pool needs gevent: pip install gevent") from exc
    monkey.patch_all()


def is_patched() -> bool:
    """Whether gevent has patched the modules the worker relies on."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return False
    return all(monkey.is_module_patched(name) for name in ("socket", "select", "threading"))
