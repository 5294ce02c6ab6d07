"""Results of several jobs: ``ResultSet`` and ``GroupResult`` (a group's, by id).

Reads the rows of their jobs in one query; waiting listens for finishes as
``AsyncResult.get`` does.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from djqueue.client import joining, promises, result_rows, unfinished
from djqueue.client.result import AsyncResult
from djqueue.core import conf, exceptions, ids, signums, states
from djqueue.db import broker, guard, waiters
from djqueue.db.models import Group, Job


class ResultSet:
    """Results of several jobs, in order: wait for all, ask how many are done.

    Reads the rows of its stored jobs in one query; waiting listens for finishes as
    ``AsyncResult.get`` does.
    """

    def __init__(self, results: Iterable[Any], **kwargs: Any) -> None:
        self.results: list[Any] = list(results)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(str(r.id) for r in self.results)}]>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResultSet):
            return other.results == self.results
        return NotImplemented

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]

    # Membership -----------------------------------------------------------------

    def add(self, result: Any) -> None:
        """Add ``result`` unless it is a member already."""
        if result not in self.results:
            self.results.append(result)

    def remove(self, result: Any) -> None:
        """Remove ``result`` (or the result with this id); ``KeyError`` if not a member."""
        if isinstance(result, str | uuid.UUID):
            result = AsyncResult(result)
        try:
            self.results.remove(result)
        except ValueError:
            raise KeyError(result) from None

    def discard(self, result: Any) -> None:
        """Remove ``result`` if it is a member."""
        with contextlib.suppress(KeyError):
            self.remove(result)

    def update(self, results: Iterable[Any]) -> None:
        """Add every one of ``results`` that is not a member yet."""
        self.results.extend(r for r in results if r not in self.results)

    def clear(self) -> None:
        """Remove every member."""
        self.results[:] = []

    # Reading --------------------------------------------------------------------

    def _stored(self) -> bool:
        return all(isinstance(result, AsyncResult) for result in self.results)

    def _uuids(self) -> list[uuid.UUID]:
        return [result._uuid for result in self.results]

    def _rows(self, wanted: list[uuid.UUID] | None = None) -> dict[uuid.UUID, dict[str, Any]]:
        wanted = self._uuids() if wanted is None else wanted
        found: dict[uuid.UUID, dict[str, Any]] = {}
        with guard.statements():
            for start in range(0, len(wanted), 5000):
                rows = Job.objects.using(conf.database()).filter(
                    pk__in=wanted[start : start + 5000]
                )
                found.update({row["id"]: row for row in rows.values("id", *result_rows.FIELDS)})
        missing = set(wanted) - set(found)
        if missing:
            raise exceptions.JobNotFound(
                f"{len(missing)} job(s) of {self._label()} are gone (forgotten or pruned), "
                f"for example {next(iter(missing))}"
            )
        return found

    def _label(self) -> str:
        return "this result set"

    def _states(self) -> list[str]:
        if not self._stored():
            return [str(result.state) for result in self.results]
        rows = self._rows()
        return [str(rows[result._uuid]["state"]) for result in self.results]

    def ready(self) -> bool:
        """Whether every job has finished."""
        return all(state in states.READY for state in self._states())

    def successful(self) -> bool:
        """Whether every job succeeded."""
        return all(state == states.SUCCESS for state in self._states())

    def failed(self) -> bool:
        """Whether any job failed."""
        return any(state == states.FAILURE for state in self._states())

    def waiting(self) -> bool:
        """Whether any job has not finished yet."""
        return not self.ready()

    def completed_count(self) -> int:
        """How many jobs succeeded."""
        return sum(state == states.SUCCESS for state in self._states())

    def maybe_throw(
        self, callback: Callable[[str, Any], Any] | None = None, propagate: bool = True
    ) -> None:
        """Raise the error of the first member, in order, that failed or was revoked."""
        for result in self.results:
            result.maybe_throw(callback=callback, propagate=propagate)

    maybe_reraise = maybe_throw

    # Waiting --------------------------------------------------------------------

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 1.0,
        callback: Callable[[str, Any], Any] | None = None,
        no_ack: bool = True,
        on_message: None = None,
        disable_sync_subtasks: bool = True,
        on_interval: Callable[[], Any] | None = None,
    ) -> list[Any]:
        """Wait for every job; return their results in order.

        With ``propagate``, the first member (in order) that failed or was revoked
        raises its error. With ``callback``, each ``(id, value)`` goes to it and the
        list returned is empty. Inside a task, see :meth:`AsyncResult.get`.
        """
        if on_message is not None:
            raise TypeError("on_message is not supported: results are rows, not messages")
        if disable_sync_subtasks:
            joining.assert_will_not_block()
        if not self._stored():
            values = [
                result.get(propagate=propagate, disable_sync_subtasks=False)
                for result in self.results
            ]
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            rows = self._wait(deadline, interval, timeout, on_interval)
            values = [result_rows.value(rows[result._uuid]) for result in self.results]
            if propagate:
                for result, value in zip(self.results, values, strict=True):
                    if rows[result._uuid]["state"] in result_rows.RAISING:
                        raise value
        if callback is None:
            return values
        for result, value in zip(self.results, values, strict=True):
            callback(result.id, value)
        return []

    join = get  # Celery's name for the same wait

    join_native = join

    def _wait(
        self,
        deadline: float | None,
        interval: float,
        timeout: float | None,
        on_interval: Callable[[], Any] | None,
    ) -> dict[uuid.UUID, dict[str, Any]]:
        done: dict[uuid.UUID, dict[str, Any]] = {}
        pending = self._collect(self._uuids(), done)
        if not pending:
            return done
        if unfinished.sent_in_open_transaction(pending[0]):
            why = unfinished.open_transaction_message(pending[0])
            raise exceptions.TimeoutError(self._unfinished(pending, why))
        with waiters.waiting(pending) as waiter:
            while True:
                # Read after registering, and after every wake: no finish is missed.
                pending = self._collect(pending, done)
                if not pending:
                    return done
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    why = unfinished.explain(pending[0], timeout)
                    raise exceptions.TimeoutError(self._unfinished(pending, why))
                woken = waiter.wait(interval if left is None else min(interval, left))
                if not woken and on_interval is not None:
                    on_interval()

    def _unfinished(self, pending: list[uuid.UUID], why: str) -> str:
        return (
            f"{len(pending)} of the {len(self.results)} jobs of {self._label()} are not "
            f"finished after the timeout; the first of them: {why}"
        )

    def _collect(
        self, pending: list[uuid.UUID], done: dict[uuid.UUID, dict[str, Any]]
    ) -> list[uuid.UUID]:
        """Read the ``pending`` jobs; move finished ones to ``done``; return the rest."""
        for job_id, row in self._rows(pending).items():
            if row["state"] in states.READY:
                done[job_id] = row
        return [job_id for job_id in pending if job_id not in done]

    def then(
        self,
        callback: Callable[[Any], Any],
        on_error: Callable[[BaseException], Any] | None = None,
        weak: bool = False,
    ) -> promises.Promise:
        """Call ``callback(self)`` once every job has finished; see
        :meth:`AsyncResult.then`."""
        if not self._stored():
            raise TypeError("then() needs results of sent jobs (AsyncResult members)")
        return promises.when_ready(self, self._uuids(), callback, on_error)

    # Changing -------------------------------------------------------------------

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> int:
        """Revoke every job (and what follows each in its workflow); return how many
        were revoked. See :meth:`AsyncResult.revoke`."""
        signums.parse(signal)  # checked once, before any job is revoked
        return sum(
            bool(result.revoke(terminate=terminate, signal=signal)) for result in self.results
        )

    def forget(self) -> None:
        """Delete the finished jobs' rows."""
        for result in self.results:
            result.forget()


class GroupResult(ResultSet):
    """The results of a group's jobs, in the group's order; restorable by id."""

    def __init__(
        self,
        id: str | uuid.UUID | None = None,
        results: Iterable[Any] | None = None,
        parent: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(results or [])
        self.id: str = str(ids.new_id() if id is None else ids.parse(id))
        self.parent: Any = parent

    def __repr__(self) -> str:
        members = ", ".join(str(r.id) for r in self.results)
        return f"<GroupResult: {self.id} [{members}]>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return (
                other.id == self.id
                and other.results == self.results
                and other.parent == self.parent
            )
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __bool__(self) -> bool:
        return True

    def _label(self) -> str:
        return f"group {self.id}"

    @property
    def children(self) -> list[Any]:
        """The members' results (Celery's name for ``results`` here)."""
        return self.results

    @classmethod
    def restore(
        cls, id: str | uuid.UUID, backend: Any = None, app: Any = None
    ) -> GroupResult | None:
        """The group with this id, or None if there is none (never sent nor saved)."""
        group_id = ids.parse(id)
        row = Group.objects.using(conf.database()).filter(pk=group_id).first()
        if row is None:
            return None
        return cls(group_id, [AsyncResult(job_id) for job_id in row.job_ids])

    def save(self, backend: Any = None) -> GroupResult:
        """Store the group so that :meth:`restore` finds it by id in any process.

        Groups that were sent are stored already; this is for a ``GroupResult`` made
        here from sent jobs' results.
        """
        if not self._stored():
            raise TypeError("only a group of sent jobs' results (AsyncResult members) can be saved")
        broker.save_group(ids.parse(self.id), self._uuids())
        return self

    def delete(self, backend: Any = None) -> None:
        """Delete the stored group (its jobs stay; see :meth:`forget`)."""
        broker.delete_group(ids.parse(self.id))
