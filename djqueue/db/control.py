"""Commands for workers and their replies, in the database (see ``djqueue.control``).

A command is a row of ``djqueue_control`` announced on :data:`CHANNEL` (payload: its
id); a reply is a row of ``djqueue_controlreply`` announced on :data:`REPLY_CHANNEL`
(payload: the command's id). Any role that can connect may NOTIFY, so a notification
only makes a worker read the table: what it does is what the row says, and the worker
checks that too (:mod:`djqueue.runtime.remote`).

The sender uses a connection of its own (:class:`Exchange`): a command sent inside the
caller's transaction would reach no worker before that transaction commits, and
waiting there for replies would wait for nothing. It is a ``LISTEN_DSN`` connection
when that is set; when it cannot be reached, one to ``DATABASES`` carries the command
all the same, and the replies are read without notifications.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connections, transaction

from djqueue.core import conf
from djqueue.db import listener, sessions, workers
from djqueue.db.sql import parts

logger = logging.getLogger("djqueue.control")

CHANNEL = listener.CONTROL_CHANNEL
REPLY_CHANNEL = "djqueue_control_reply"

# A lasting command (``key`` set) replaces the earlier ones with its key, in the same
# transaction, so that a worker starting later applies the latest only.
INSERT = """
WITH gone AS (
    DELETE FROM djqueue_control WHERE %(key)s <> '' AND key = %(key)s
)
INSERT INTO djqueue_control (id, command, arguments, destination, created_at, expires_at, key)
VALUES (%(id)s, %(command)s, %(arguments)s::jsonb, %(destination)s::jsonb, now(),
        CASE WHEN %(ttl)s::float8 IS NULL THEN NULL
             ELSE now() + make_interval(secs => %(ttl)s::float8) END,
        %(key)s)
"""

NOTIFY = "SELECT pg_notify(%s, %s)"

# Workers that sent a heartbeat lately and did not stop: the ones expected to answer.
LIVE_WORKERS = f"""
SELECT name FROM djqueue_worker WHERE {parts.LIVE_WORKER} ORDER BY name
"""  # noqa: S608

REPLIES = """
SELECT worker, reply::text FROM djqueue_controlreply WHERE control_id = %s ORDER BY id
"""

# What a worker should look at: lasting commands whenever they were sent, and one-shot
# commands sent since the worker started that have not lapsed.
PENDING = """
SELECT c.id, c.command, c.arguments::text, c.destination::text
FROM djqueue_control AS c
WHERE c.expires_at IS NULL
   OR (c.expires_at > now()
       AND c.created_at >= (SELECT started_at FROM djqueue_worker WHERE name = %s))
ORDER BY c.created_at, c.id
"""

# ON CONFLICT: a worker answers once; a second answer (a restarted control loop that
# read the command again) is dropped.
ANSWER = """
INSERT INTO djqueue_controlreply (control_id, worker, reply, created_at)
SELECT %s, %s, %s::jsonb, now()
WHERE EXISTS (SELECT 1 FROM djqueue_control WHERE id = %s)
ON CONFLICT (control_id, worker) DO NOTHING
"""

# One-shot commands lapse at expires_at; their replies go with them (ON DELETE CASCADE).
PRUNE = """
DELETE FROM djqueue_control
WHERE expires_at IS NOT NULL AND expires_at < now() - make_interval(secs => %s)
"""

# One-shot commands and their replies are kept this long after they lapse.
KEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Command:
    """A command row as a worker reads it. ``arguments`` and ``destination`` are data
    from a table: the worker validates them before use."""

    id: uuid.UUID
    command: str
    arguments: object
    destination: object


def matches(destination: object, worker: str) -> bool:
    """Whether a command for ``destination`` is for ``worker``.

    None means every worker; otherwise a list of names, each either a worker's full
    name or the node name it was started with (``-n``), which its full name extends.
    """
    if destination is None:
        return True
    if not isinstance(destination, list):
        return False
    return any(
        isinstance(name, str) and (worker == name or worker.startswith(name + "."))
        for name in destination
    )


class Exchange:
    """A sender's own connection: writes commands, waits for and reads replies."""

    def __init__(self) -> None:
        self.conn: psycopg.Connection[Any] = _connect()
        self._listening = False

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def send(
        self,
        command: str,
        arguments: dict[str, Any],
        destination: Sequence[str] | None,
        *,
        ttl: float | None,
        key: str = "",
        listen: bool = False,
    ) -> uuid.UUID:
        """Write a command and announce it; with ``listen``, replies can be waited for."""
        if listen and not self._listening:
            self.conn.execute(f"LISTEN {REPLY_CHANNEL}")
            self._listening = True
        control_id = uuid.uuid4()
        with self.conn.transaction():
            self.conn.execute(
                INSERT,
                {
                    "id": control_id,
                    "command": command,
                    "arguments": json.dumps(arguments),
                    "destination": None if destination is None else json.dumps(list(destination)),
                    "ttl": ttl,
                    "key": key,
                },
            )
            self.conn.execute(NOTIFY, [CHANNEL, str(control_id)])
        return control_id

    def live_workers(self) -> list[str]:
        """Names of the workers alive now (a heartbeat within three intervals)."""
        window = workers.live_seconds()
        return [row[0] for row in self.conn.execute(LIVE_WORKERS, [window]).fetchall()]

    def replies(self, control_id: uuid.UUID) -> dict[str, Any]:
        """The replies to ``control_id`` so far, by worker name."""
        rows = self.conn.execute(REPLIES, [control_id]).fetchall()
        return {worker: json.loads(reply) for worker, reply in rows}

    def wait(self, timeout: float) -> None:
        """Return when a reply was announced, or after ``timeout`` seconds."""
        for _ in self.conn.notifies(timeout=max(0.0, timeout), stop_after=1):
            pass


def _connect() -> psycopg.Connection[Any]:
    try:
        return listener.connect()
    except psycopg.OperationalError as exc:
        if not conf.get("LISTEN_DSN"):
            raise
        logger.warning(
            "Cannot reach LISTEN_DSN (%s); sending the command through DATABASES, "
            "replies are read without notifications.",
            " ".join(str(exc).split()),
        )
        return sessions.connect_database()


def pending(worker: str) -> list[Command]:
    """Commands ``worker`` should act on (lasting ones, and recent one-shots), oldest
    first; destinations are not filtered yet. On the calling thread's connection."""
    with _cursor() as cursor:
        cursor.execute(PENDING, [worker])
        rows = cursor.fetchall()
    return [
        Command(row[0], row[1], _loads(row[2]), _loads(row[3]) if row[3] is not None else None)
        for row in rows
    ]


def answer(control_id: uuid.UUID, worker: str, reply: Any) -> None:
    """Record ``worker``'s reply to ``control_id`` and announce it."""
    with transaction.atomic(using=conf.database()), _cursor() as cursor:
        cursor.execute(ANSWER, [control_id, worker, json.dumps(reply, default=str), control_id])
        cursor.execute(NOTIFY, [REPLY_CHANNEL, str(control_id)])


def prune() -> int:
    """Delete one-shot commands (and their replies) that lapsed a while ago."""
    with _cursor() as cursor:
        cursor.execute(PRUNE, [KEEP_SECONDS])
        return int(cursor.rowcount)


@contextlib.contextmanager
def _cursor() -> Iterator[Any]:
    with connections[conf.database()].cursor() as cursor:
        yield cursor


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


__all__ = ["CHANNEL", "REPLY_CHANNEL", "Command", "Exchange", "answer", "matches", "pending"]
