"""Type variables of the client's generic classes (tasks, signatures, results).

``R`` is what a task returns (awaited, for ``async def`` tasks). Its default, ``Any``,
makes ``AsyncResult(job_id)``, ``signature("name")`` and a bare ``AsyncResult``
annotation mean "a result of a type nobody stated", as they did before these classes
were generic. ``typing.TypeVar`` takes a default from Python 3.13 on, so type checkers
read the backport's declarations; at run time a default plays no part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultedTypeVar

    R = DefaultedTypeVar("R", default=Any)
    # Results only hand their value out, so an AsyncResult[int] is an AsyncResult[object].
    R_co = DefaultedTypeVar("R_co", covariant=True, default=Any)
else:
    R = TypeVar("R")
    R_co = TypeVar("R_co", covariant=True)

T = TypeVar("T")
