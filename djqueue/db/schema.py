"""Whether djqueue's tables are in place: migrations not applied, and the database
errors that mean the same (a table or column the code expects and does not find).

Both end in one line that says what to do, ``run `python manage.py migrate```, raised
as :class:`~djqueue.exceptions.MigrationsMissing` (a ``ProgrammingError``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import DatabaseError, OperationalError, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from djqueue.core import conf
from djqueue.core.exceptions import MigrationsMissing

APP = "djqueue"
MIGRATE = "run `python manage.py migrate`"
# What PostgreSQL says when a statement names a table, column or function that the
# migrations create and the database does not have.
_UNDEFINED = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.UndefinedFunction,
)


def pending(alias: str | None = None) -> list[str]:
    """djqueue's migrations not applied to the queue database, oldest first.

    Reads the migration files and ``django_migrations`` (one query): cheap enough for
    a process that starts, not for every request.
    """
    executor = MigrationExecutor(connections[alias or _alias()])
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == APP]
    plan = executor.migration_plan(targets)
    return [migration.name for migration, _ in plan if migration.app_label == APP]


def require(alias: str | None = None) -> None:
    """Raise :class:`MigrationsMissing` unless every djqueue migration is applied.

    A database that cannot be reached is not judged here: the caller's own outage
    handling waits for it, and the errors that follow are translated then.
    """
    alias = alias or _alias()
    try:
        missing = pending(alias)
    except OperationalError:
        return
    finally:
        # Leave no connection behind in a process that is about to start its own.
        connections[alias].close()
    if missing:
        raise MigrationsMissing(_pending_message(alias, missing))


def _pending_message(alias: str, missing: list[str]) -> str:
    applied = _migration_count() - len(missing)
    if applied <= 0:
        return f"djqueue's tables are missing from database {_where(alias)}: {MIGRATE}"
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    return (
        f"djqueue's tables in database {_where(alias)} lack {len(missing)} newer "
        f"migration(s) ({shown}): {MIGRATE}"
    )


def _migration_count() -> int:
    executor = MigrationExecutor(None)  # the files only, no database
    return sum(1 for key in executor.loader.disk_migrations if key[0] == APP)


def translate(
    exc: BaseException, alias: str | None = None, ours: bool = False
) -> MigrationsMissing | None:
    """The :class:`MigrationsMissing` that ``exc`` amounts to, or None.

    ``exc`` is a database error from Django or psycopg, for a statement that named a
    djqueue table, column or function the database lacks. With ``ours`` the statement
    was one of djqueue's own, so a missing table or column is djqueue's even when the
    error names it by an alias (``column j.claimed_at does not exist``).
    """
    if isinstance(exc, MigrationsMissing):
        return exc
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, psycopg.Error):
        cause = cause.__cause__
    if not isinstance(cause, _UNDEFINED):
        return None
    said = cause.diag.message_primary or str(cause).splitlines()[0]
    # A function that is missing may be PostgreSQL's own (an older server): only
    # djqueue's functions come from its migrations.
    named = "djqueue_" in said
    if not named and (not ours or isinstance(cause, psycopg.errors.UndefinedFunction)):
        return None
    where = _where(alias or _alias())
    if isinstance(cause, psycopg.errors.UndefinedTable):
        return MigrationsMissing(f"djqueue's tables are missing from database {where}: {MIGRATE}")
    return MigrationsMissing(
        f"djqueue's tables in database {where} are older than this version of djqueue "
        f"({said}): {MIGRATE}"
    )


@contextmanager
def translated(alias: str | None = None, ours: bool = False) -> Iterator[None]:
    """Raise :class:`MigrationsMissing` for database errors that mean missing migrations
    (see :func:`translate` for ``ours``)."""
    try:
        yield
    except DatabaseError as exc:
        missing = translate(exc, alias, ours)
        if missing is None:
            raise
        raise missing from None


def roll_back_after_error() -> None:
    """After catching a failed statement: have any open ``atomic()`` block roll back.

    PostgreSQL refuses further statements in a transaction with a failed one, so the
    block must end in a rollback, not a commit (``ATOMIC_REQUESTS``, the admin's forms).
    """
    for alias in connections:
        if connections[alias].in_atomic_block:
            transaction.set_rollback(True, using=alias)


def _where(alias: str) -> str:
    name = connections[alias].settings_dict.get("NAME")
    return f"{alias!r} ({name})" if name and name != alias else repr(alias)


def _alias() -> str:
    return conf.database()
