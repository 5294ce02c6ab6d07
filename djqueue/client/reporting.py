"""What a running task reports of itself while it runs: its progress and its state.

A mixin of :class:`djqueue.client.definition.Task`. Both are written to the job's row at
once, through the data layer, and do nothing outside a worker.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from djqueue.core import codec, conf, ids, text
from djqueue.core.exceptions import PayloadTooLarge
from djqueue.db import broker

if TYPE_CHECKING:
    from djqueue.core.context import Request


class StateReporting:
    """``update_progress`` and ``update_state``."""

    if TYPE_CHECKING:

        @property
        def request(self) -> Request: ...

    def update_progress(
        self, current: float, total: float | None = None, message: str = ""
    ) -> None:
        """Report how far the running job is (``bind=True`` tasks: ``self.update_progress``).

        Stored in the job's row at once (outside any transaction the task holds open, it
        is seen by others right away) and shown by the admin, ``AsyncResult.progress``
        and ``AsyncResult.info``. Does nothing outside a worker (plain calls, eager runs).
        """
        for label, value in (("current", current), ("total", total)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TypeError(f"progress {label} must be a number, not {value!r}")
        request = self.request
        if request.id is None or request.is_eager:
            return
        broker.update_progress(
            ids.parse(request.id),
            request.attempt,
            request.hostname or "",
            {"current": current, "total": total, "message": text.storable(str(message), 1000)},
        )

    def update_state(
        self,
        task_id: str | uuid.UUID | None = None,
        state: str | None = None,
        meta: Any = None,
        **kwargs: Any,
    ) -> None:
        """Report the running job's state (any name: ``"PROGRESS"``) and its meta.

        ``AsyncResult(id).state`` shows ``state`` and ``.info`` shows ``meta`` while the
        job runs, and after the task raises ``Ignore``; when the job ends, its final
        state replaces them. Stored in the job's row at once, like ``update_progress``.
        A task reports its own state only: ``task_id`` may name nothing else. Does
        nothing outside a worker (plain calls, eager runs).
        """
        if not isinstance(state, str) or not state or len(state) > 100:
            raise ValueError(
                f"update_state takes a state name of 1 to 100 characters, not {state!r}"
            )
        request = self.request
        if task_id is not None and (
            request.id is None or ids.parse(task_id) != ids.parse(request.id)
        ):
            raise ValueError(
                f"update_state can only report the state of the running job "
                f"({request.id}), not of {task_id}: another job's state is its own worker's"
            )
        try:
            encoded = codec.dumps(meta)
        except TypeError as exc:
            raise TypeError(f"the meta of update_state must be JSON data: {exc}") from None
        cap = conf.integer("MAX_PAYLOAD_BYTES")
        if len(encoded) > cap:
            raise PayloadTooLarge(
                f"the meta of update_state is {len(encoded)} bytes as JSON, over the "
                f"MAX_PAYLOAD_BYTES limit of {cap}"
            )
        if request.id is None or request.is_eager:
            return
        broker.update_state(
            ids.parse(request.id), request.attempt, request.hostname or "", state, encoded
        )
