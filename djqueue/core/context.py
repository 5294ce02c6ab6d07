"""The request context: what a running task knows about its own invocation.

The executor makes a request current around a task's code; ``Task.request`` and
``self.request`` (``bind=True``) read it. A context variable, so each thread and each
coroutine sees its own.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """What a running task knows about its own invocation (``self.request``)."""

    # Ids are strings, as Celery's are: they compare with ``AsyncResult.id`` and go into
    # JSON as they are.
    id: str | None = None
    task: str = ""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    attempt: int = 0
    queue: str = ""
    priority: int = 0
    eta: str | None = None  # ISO 8601, as Celery's
    hostname: str = ""
    is_eager: bool = False
    # Celery's request fields (docs/tasks.md, "bind and self.request").
    expires: str | None = None  # ISO 8601, as Celery's
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    chain: list[dict[str, Any]] | None = None
    callbacks: list[dict[str, Any]] | None = None
    errbacks: list[dict[str, Any]] | None = None
    delivery_info: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    shadow: str | None = None
    ignore_result: bool = False
    time_limit: float | None = None
    soft_time_limit: float | None = None

    @property
    def properties(self) -> dict[str, Any]:
        """Celery's message properties: the delivery information and the priority."""
        return {"delivery_info": self.delivery_info, "priority": self.priority}

    def get(self, key: str, default: Any = None) -> Any:
        """A field or a header by name, as Celery's ``request.get``."""
        return getattr(self, key, default)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not fields: the headers the call was sent with
        # read as attributes, as in Celery (``self.request.tenant``).
        headers = self.__dict__.get("headers") or {}
        if name in headers:
            return headers[name]
        raise AttributeError(f"the request has no field or header {name!r}")


_NO_REQUEST = Request()
_request: contextvars.ContextVar[Request] = contextvars.ContextVar("djqueue_request")


def current_request() -> Request:
    """The request of the task running in this thread or coroutine."""
    return _request.get(_NO_REQUEST)


def set_request(request: Request) -> contextvars.Token[Request]:
    """Make ``request`` current; pass the token to :func:`reset_request` afterwards."""
    return _request.set(request)


def reset_request(token: contextvars.Token[Request]) -> None:
    """Restore the request that was current before :func:`set_request`."""
    _request.reset(token)
