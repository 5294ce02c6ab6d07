"""A producer process: sends ``chaos_record`` jobs at a steady rate, riding out outages.

``python -m tests.chaos.produce RATE SECONDS JOB_SECONDS ACKED_FILE [one]`` sends about
RATE jobs a second for SECONDS seconds, in small batches (``delay_many``), or with
``one`` by one ``delay()`` call each. The id of every job whose sending returned (so whose
INSERT committed) is appended to ACKED_FILE at once: those jobs must never be lost. A
batch whose sending failed is not retried (it may or may not have committed; what did
commit is in the table and is counted there), and the connection is left as it is: the
next call must reconnect by itself.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import django

# Batches a second: small batches keep the rate steady.
TICKS_PER_SECOND = 10

logger = logging.getLogger("chaos.produce")


def main(
    rate: float, seconds: float, job_seconds: float, acked_path: str, one_by_one: bool = False
) -> int:
    """Send for ``seconds``; return the exit code."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.db import DatabaseError, InterfaceError, connection

    from tests.testapp import tasks

    per_tick = max(1, round(rate / TICKS_PER_SECOND))
    start = time.monotonic()
    tick = 0
    with open(acked_path, "a", encoding="ascii") as acked:
        while (now := time.monotonic()) - start < seconds:
            due = start + tick / TICKS_PER_SECOND
            if due > now:
                time.sleep(due - now)
            tick += 1
            batches = [1] * per_tick if one_by_one else [per_tick]
            for size in batches:
                try:
                    if one_by_one:
                        results = [tasks.chaos_record.delay(job_seconds)]
                    else:
                        results = tasks.chaos_record.delay_many([(job_seconds,)] * size)
                except (DatabaseError, InterfaceError) as exc:
                    # No connection.close(): djqueue drops a lost connection itself, and
                    # the next call reconnects (to whichever server accepts writes).
                    logger.warning("sending failed: %s", " ".join(str(exc).split()))
                    continue
                acked.write("".join(f"{result.id}\n" for result in results))
                acked.flush()
    connection.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rate, seconds, job_seconds, path = sys.argv[1:5]
    one = sys.argv[5:6] == ["one"]
    sys.exit(main(float(rate), float(seconds), float(job_seconds), path, one))
