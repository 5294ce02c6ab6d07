"""Column types of djqueue's own: PostgreSQL arrays, read and written only by the data
layer's SQL.

Migrations 0002, 0016 and 0018 name them ``djqueue.db.models.<class>``, where they were
defined before the models were split: the package keeps re-exporting them there.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class TimestampArrayField(models.Field):  # type: ignore[type-arg]
    """A ``timestamptz[]`` column. Only the broker's SQL reads and writes it.

    A plain column type rather than ``django.contrib.postgres``' ArrayField, which would
    make every project add ``django.contrib.postgres`` to ``INSTALLED_APPS``.
    """

    def db_type(self, connection: Any) -> str:
        return "timestamp with time zone[]"


class IntegerArrayField(models.Field):  # type: ignore[type-arg]
    """An ``integer[]`` column (a histogram's bucket counts), without
    ``django.contrib.postgres``, as :class:`TimestampArrayField`."""

    def db_type(self, connection: Any) -> str:
        return "integer[]"


class BigIntegerArrayField(models.Field):  # type: ignore[type-arg]
    """A ``bigint[]`` column: bucket counts that grow for ever (cumulative totals)."""

    def db_type(self, connection: Any) -> str:
        return "bigint[]"
