"""A connection to the queue database found dead after an error is closed at once (outside
a transaction), so that the next call opens a new one.

Django opens a connection only when it has none: a broken one is closed at the start
and end of a web request, or by ``close_old_connections()``, never on its own. A process
that sends jobs or reads results outside requests (a script sending in a loop, a
service waiting on results) would otherwise fail on every later call once its server
went away: after a restart, or after a failover, where a new connection to a multi-host
``HOST`` with ``target_session_attrs=read-write`` finds the new primary.

Inside ``transaction.atomic()`` the connection is left alone: the transaction is lost
with it, and Django's ``atomic`` drops the connection when its rollback fails.
"""

from __future__ import annotations

from django.db import DatabaseError, connections

from djqueue.core import conf


def drop_if_lost(alias: str | None = None) -> bool:
    """Close the connection of ``alias`` (the queue database by default) if it is gone
    and no transaction is open on it; return whether it was closed (or was none)."""
    connection = connections[alias or conf.database()]
    if connection.in_atomic_block:
        return False
    try:
        usable = connection.connection is not None and connection.is_usable()
    except DatabaseError:
        usable = False
    if usable:
        return False  # an error of the statement itself, not of the link
    connection.close()
    return True
