"""A connection lost under djqueue's calls outside a transaction is dropped, so that the
next call reconnects by itself: a process that sends jobs or reads results in a loop
rides out a server restart or a failover without closing connections of its own.

The session is ended from another connection (``pg_terminate_backend``), as a server
that goes away ends it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection, transaction

from djqueue import states
from djqueue.db.models import Job
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def lose_the_connection() -> None:
    """End this test's database session from another one."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    given = connection.settings_dict
    with psycopg.connect(
        dbname=given["NAME"],
        host=given["HOST"] or "127.0.0.1",
        port=given["PORT"] or 5432,
        user=given["USER"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def _fails_once_then_works(call: Callable[[], Any]) -> Any:
    lose_the_connection()
    with pytest.raises((OperationalError, InterfaceError)):
        call()
    return call()


def test_delay_many_works_again_after_a_lost_connection() -> None:
    results = _fails_once_then_works(lambda: tasks.add.delay_many([(1, 2), (3, 4)]))
    assert Job.objects.filter(id__in=[r.id for r in results]).count() == 2


def test_apply_async_without_retry_works_again_after_a_lost_connection() -> None:
    result = _fails_once_then_works(lambda: tasks.add.apply_async((1, 2), retry=False))
    assert Job.objects.filter(id=result.id).exists()


def test_reading_a_result_works_again_after_a_lost_connection() -> None:
    sent = tasks.add.delay(1, 2)
    assert _fails_once_then_works(lambda: sent.state) == states.PENDING


def test_revoking_works_again_after_a_lost_connection() -> None:
    sent = tasks.add.delay(1, 2)
    _fails_once_then_works(sent.revoke)
    assert Job.objects.get(id=sent.id).state == states.REVOKED


def test_in_a_transaction_the_error_reaches_the_caller_and_the_next_call_works() -> None:
    # Inside atomic() the connection is not dropped under the transaction: atomic()
    # ends it, and Django drops the connection when its rollback fails.
    with pytest.raises(OperationalError), transaction.atomic():
        lose_the_connection()
        tasks.add.delay_many([(1, 2)])
    [result] = tasks.add.delay_many([(5, 6)])
    assert list(Job.objects.values_list("id", flat=True)) == [result._uuid]
