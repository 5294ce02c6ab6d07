"""What every statement djqueue sends runs inside: an error that means djqueue's
migrations are missing is raised as :class:`~djqueue.db.schema.MigrationsMissing`, which
says to run ``migrate``; a connection found dead is dropped, so that the next call
reconnects (:mod:`djqueue.db.reconnect`)."""

from __future__ import annotations

from types import TracebackType

from django.db import DatabaseError, InterfaceError, OperationalError

from djqueue.db import reconnect, schema


class Guard:
    """The context manager of :func:`statements`."""

    # A class, not a generator: the worker enters one for every statement it sends.
    __slots__ = ("alias", "ours")

    def __init__(self, alias: str | None, ours: bool) -> None:
        self.alias = alias
        self.ours = ours

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, DatabaseError):
            missing = schema.translate(error, self.alias, self.ours)
            if missing is not None:
                raise missing from None
        if isinstance(error, (OperationalError, InterfaceError)):
            reconnect.drop_if_lost(self.alias)


def statements(alias: str | None = None, ours: bool = False) -> Guard:
    """Guard the statements run in the block on ``alias`` (the queue database by
    default); ``ours``: they are djqueue's own (see :func:`schema.translate`)."""
    return Guard(alias, ours)
