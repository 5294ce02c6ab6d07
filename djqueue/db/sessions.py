"""Timeouts on the database connections that djqueue's own processes and threads hold.

A connection can die without anyone hearing of it: a network link that freezes (a
firewall or NAT that forgets the connection, a host that vanishes) leaves the socket
open while nothing arrives, and a thread waiting on it would wait for ever. Four
guards turn that into an error, which djqueue's loops answer with a reconnect:

- ``connect_timeout``: a new connection to a host that does not answer (one that
  vanished) is given up on, and the next host of a multi-host ``HOST`` is tried (after
  a failover, the new primary); otherwise each attempt would wait minutes.

- TCP keepalives: probes sent on a quiet connection (a LISTEN connection is quiet most
  of the time); when none is answered, the kernel ends the connection.
- ``tcp_user_timeout`` (Linux): data sent but not acknowledged for that long ends the
  connection (a statement sent into a frozen link).
- ``statement_timeout``: the server cancels a statement that runs too long (a lock
  wait, a stalled server). Only on connections of djqueue's own threads: task code may
  run long reports on its connections, and they are left alone.

The first three are libpq connection parameters (:func:`link_options`): the listener's
connections always get them, and ``runworker`` and ``runbeat`` add them to the Django
connections of their process (:func:`protect_django_connections`). The statement
timeout, with the same keepalives for the server's end of the link
(:func:`session_settings`), is set on the listener's connections and on connections
opened by a thread that called :func:`own_thread` (not when ``LISTEN_DSN`` says that
``DATABASES`` goes through a transaction-mode pooler: see :func:`conf.behind_pooler`).

The server's end of the link guards alone (:func:`link_settings`, no statement timeout)
goes on every other connection those processes open to the protected alias, the ones
task code uses included: when a worker's host vanishes, the server must end a task's
session too, or a transaction it left open keeps its locks (on rows the job's next
attempt may need) for the hours the system's own keepalives take.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from djqueue.core import conf

# Session settings in one round trip. A function, not SET: SET takes no parameters.
SET_SESSION = (
    "SELECT set_config(name, value, false) FROM unnest(%s::text[], %s::text[]) AS s(name, value)"
)
# The same for the current transaction only: they end with it, and so cannot follow a
# server connection of a transaction-mode pooler into another client's transactions.
SET_LOCAL = (
    "SELECT set_config(name, value, true) FROM unnest(%s::text[], %s::text[]) AS s(name, value)"
)

# Whether the current thread is one of djqueue's own (thread-local; greenlet-local
# under gevent, whose patching makes threading.local per greenlet).
_marks = threading.local()
# Aliases whose connections get the server's side of the link guards in this process,
# whatever thread opens them (kept across fork: prefork children run the tasks).
_protected: set[str] = set()


def link_options() -> dict[str, int]:
    """libpq parameters that end a connection whose network link has died.

    A setting set to None is left out (libpq's and the system's default applies).
    """
    options: dict[str, int] = {}
    keepalives = {
        "keepalives_idle": conf.optional_number("TCP_KEEPALIVE_IDLE_SECONDS"),
        "keepalives_interval": conf.optional_number("TCP_KEEPALIVE_INTERVAL_SECONDS"),
        "keepalives_count": conf.optional_integer("TCP_KEEPALIVE_COUNT"),
    }
    for name, value in keepalives.items():
        if value is not None:
            # libpq counts whole seconds; zero would mean "the system's default".
            options[name] = max(1, round(value))
    if options:
        options["keepalives"] = 1
    user_timeout = conf.optional_number("TCP_USER_TIMEOUT_SECONDS")
    if user_timeout is not None:
        options["tcp_user_timeout"] = _milliseconds(user_timeout)
    connect = conf.optional_number("CONNECT_TIMEOUT_SECONDS")
    if connect is not None:
        # Whole seconds, 2 at least (libpq's and psycopg's floor).
        options["connect_timeout"] = max(2, round(connect))
    return options


def with_link_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` connection parameters plus the link options they do not set."""
    return {**link_options(), **given}


def protect_django_connections(alias: str | None = None) -> None:
    """Add the link options the user did not set to the ``OPTIONS`` of ``alias``, and
    the server's side of them (:func:`link_settings`) to every connection to it.

    For the processes djqueue runs (``runworker``, ``runbeat``): call it before the
    alias is used. Every thread's connection to the alias reads the same settings dict.
    """
    alias = alias or conf.database()
    database = connections.settings[alias]
    database["OPTIONS"] = with_link_options(database.get("OPTIONS") or {})
    # The server's side too, on connections of any thread (task code's included).
    _protected.add(alias)
    connection_created.connect(_on_connection_created, dispatch_uid=__name__)
    # A connection this thread already holds was made without them: start afresh.
    connections[alias].close()


def own_thread() -> None:
    """Mark the calling thread as one of djqueue's own.

    Database connections it opens from now on get the :func:`session_settings`
    (statement timeout, server keepalives), and so does any it holds already.
    Connections of other threads (those running task code) are left alone. Call it
    first thing in the thread; it cannot be undone.
    """
    _marks.own = True
    connection_created.connect(_on_connection_created, dispatch_uid=__name__)
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _guard_django(wrapper)


def is_own_thread() -> bool:
    """Whether the calling thread called :func:`own_thread`."""
    return bool(getattr(_marks, "own", False))


def connect_database(autocommit: bool = True) -> psycopg.Connection[Any]:
    """A plain psycopg connection to the queue database as ``DATABASES`` configures it
    (through a pooler if it names one), with the :func:`link_options` it does not set.

    No session settings: see :func:`guard_transaction` for a connection that may go
    through a transaction-mode pooler.
    """
    params = connections[conf.database()].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.connect(**with_link_options(params), autocommit=autocommit)


def guard_transaction(conn: psycopg.Connection[Any]) -> None:
    """Apply :func:`session_settings` to the transaction ``conn`` is in (or begins):
    they last until it ends, through a transaction-mode pooler as well."""
    names, values = _settings_arrays()
    if names:
        conn.execute(SET_LOCAL, [names, values])


def guard(conn: psycopg.Connection[Any]) -> None:
    """Apply :func:`session_settings` to a plain psycopg connection of djqueue's own."""
    names, values = _settings_arrays()
    if not names:
        return
    conn.execute(SET_SESSION, [names, values])
    if not conn.autocommit:
        # set_config(..., false) lasts for the session once its transaction commits.
        conn.commit()


def session_settings() -> dict[str, str]:
    """Server settings for a session of djqueue's own (a setting None: left out).

    The statement timeout, and the server's side of the keepalives: the server then
    notices a dead link too, and ends the session and frees what it held (such as
    the scheduler's leader lock) instead of waiting for the system's default of hours.
    """
    timeout = conf.optional_number("STATEMENT_TIMEOUT_SECONDS")
    chosen = {} if timeout is None else {"statement_timeout": str(_milliseconds(timeout))}
    return {**chosen, **link_settings()}


def link_settings() -> dict[str, str]:
    """The server's side of the link guards: its keepalives and user timeout (a setting
    None: left out). They end a session whose client vanished; they limit nothing else,
    so they suit the connections task code uses as well."""
    chosen = {
        "tcp_keepalives_idle": conf.optional_number("TCP_KEEPALIVE_IDLE_SECONDS"),
        "tcp_keepalives_interval": conf.optional_number("TCP_KEEPALIVE_INTERVAL_SECONDS"),
        "tcp_keepalives_count": conf.optional_integer("TCP_KEEPALIVE_COUNT"),
        "tcp_user_timeout": conf.optional_number("TCP_USER_TIMEOUT_SECONDS"),
    }
    return {
        name: str(_milliseconds(value) if name == "tcp_user_timeout" else max(1, round(value)))
        for name, value in chosen.items()
        if value is not None
    }


def _on_connection_created(
    sender: object, connection: BaseDatabaseWrapper, **kwargs: object
) -> None:
    if is_own_thread():
        _guard_django(connection)
    elif connection.alias in _protected:
        _guard_django(connection, link_settings())


def _guard_django(wrapper: BaseDatabaseWrapper, chosen: Mapping[str, str] | None = None) -> None:
    """Make the ``chosen`` session settings (all of :func:`session_settings` by default)
    on a Django connection, unless it may pass to another thread or client."""
    chosen = session_settings() if chosen is None else chosen
    names, values = list(chosen), list(chosen.values())
    if not names or wrapper.vendor != "postgresql":
        return
    if (wrapper.settings_dict.get("OPTIONS") or {}).get("pool") or conf.behind_pooler():
        # Django's pool hands a connection from thread to thread, and a transaction-mode
        # pooler hands its server connections from client to client: the settings would
        # follow them into task code and other processes.
        return
    with wrapper.cursor() as cursor:
        cursor.execute(SET_SESSION, [names, values])


def _settings_arrays() -> tuple[list[str], list[str]]:
    chosen = session_settings()
    return list(chosen), list(chosen.values())


def _milliseconds(seconds: float) -> int:
    # Zero would turn the timeout off: the smallest value that is one is 1 ms.
    return max(1, round(seconds * 1000))


def _forget_marks() -> None:
    global _marks
    # A child forked from one of djqueue's threads (prefork) runs task code.
    _marks = threading.local()


os.register_at_fork(after_in_child=_forget_marks)
