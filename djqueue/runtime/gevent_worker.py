"""``python -m djqueue.gevent_worker [options]``: ``runworker --pool gevent``, patched first.

For projects whose ``manage.py`` does not call :mod:`djqueue.runtime.gevent_patch`. Takes the
options of ``runworker`` plus Django's own (``--settings``, ``--pythonpath``); the
settings module comes from ``DJANGO_SETTINGS_MODULE`` otherwise, as with django-admin.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from djqueue.runtime import gevent_patch


def command_line(args: Sequence[str]) -> list[str]:
    """The django-admin command line that runs ``runworker`` with ``args`` under gevent."""
    pool = gevent_patch.pool_option(args)
    if pool not in (None, "gevent"):
        raise SystemExit(f"djqueue.gevent_worker runs the gevent pool only, not --pool {pool}")
    extra = [] if pool == "gevent" else ["--pool", "gevent"]
    return ["django-admin", "runworker", *extra, *args]


def main(args: Sequence[str] | None = None) -> None:
    """Patch, then hand over to Django's command line."""
    argv = command_line(sys.argv[1:] if args is None else args)
    gevent_patch.patch()
    # Imported only now: Django and psycopg must see the patched modules.
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
