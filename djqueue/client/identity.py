"""A result that stands for its job id: prints, compares and hashes as that id."""

from __future__ import annotations


class ById:
    """Mixin for results: ``str(r)``, ``r == "id"`` and ``hash(r)`` follow ``r.id``."""

    id: str

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, type(self)):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def task_id(self) -> str:
        """The job id (Celery's older name for ``id``)."""
        return self.id
