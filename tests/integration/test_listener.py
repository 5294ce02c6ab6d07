"""A listener on the real server: whatever a role NOTIFYs, it hands on only validated
notices and keeps listening."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from django.test import override_settings
from psycopg import sql as pgsql

from djqueue.db import listener

pytestmark = pytest.mark.django_db(transaction=True)

JOB = uuid.UUID("01942a6e-5b1c-7000-8d3a-1748f457c0ef")


def notify(channel: str, payload: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])


def hear(heard: listener.Listener, count: int) -> list[listener.Notice]:
    """The next ``count`` notices (fails after 10 seconds without them)."""
    found: list[listener.Notice] = []
    deadline = time.monotonic() + 10
    while len(found) < count and time.monotonic() < deadline:
        found.extend(heard.notices(0.2))
    return found


@pytest.fixture
def heard() -> Iterator[listener.Listener]:
    made = listener.Listener(
        [listener.JOBS_CHANNEL, listener.REVOKE_CHANNEL, listener.DONE_CHANNEL]
    )
    assert made.notices(5) == [listener.RECONNECTED]
    yield made
    made.close()


def test_garbage_from_any_role_is_dropped_and_listening_goes_on(
    heard: listener.Listener,
) -> None:
    notify("djqueue_revoke", "garbage")
    notify("djqueue_revoke", "\x1b[2J")
    notify("djqueue_done", "not an id")
    notify("djqueue", "q" * 101)
    notify("djqueue_revoke", str(JOB))
    notify("djqueue_done", str(JOB))
    notify("djqueue", "reports")

    assert hear(heard, 3) == [
        listener.RevokeRequested(JOB),
        listener.Finished(frozenset({JOB})),
        listener.NewJobs("reports"),
    ]
    assert listener.rejected.count >= 4


@pytest.fixture
def ascii_database() -> Iterator[str]:
    """A scratch database in the SQL_ASCII encoding, which stores bytes as given."""
    name = f"{connection.settings_dict['NAME']}_ascii"
    with connection.cursor() as cursor:
        cursor.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(pgsql.Identifier(name)))
        cursor.execute(
            pgsql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'SQL_ASCII' "
                "LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(pgsql.Identifier(name))
        )
    yield name
    with connection.cursor() as cursor:
        cursor.execute(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name))
        )


def test_a_payload_that_cannot_be_decoded_asks_for_a_new_look(ascii_database: str) -> None:
    db = connection.settings_dict
    dsn = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={ascii_database}"
    with override_settings(DJQUEUE={"LISTEN_DSN": dsn}):
        heard = listener.Listener([listener.REVOKE_CHANNEL])
        try:
            assert heard.notices(5) == [listener.RECONNECTED]
            with psycopg.connect(dsn, autocommit=True) as sender:
                bad = "convert_from('\\xff'::bytea, 'SQL_ASCII')"  # not valid UTF-8
                sender.execute(f"SELECT pg_notify('djqueue_revoke', {bad})")
                # What came with the bad payload may be lost: the caller looks again.
                assert hear(heard, 1) == [listener.RECONNECTED]
                sender.execute("SELECT pg_notify('djqueue_revoke', %s)", [str(JOB)])
                assert hear(heard, 1) == [listener.RevokeRequested(JOB)]
        finally:
            heard.close()
