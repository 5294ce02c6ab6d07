"""Job ids: time-ordered UUIDs so that the primary key sorts in enqueue order."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> uuid.UUID:
    """Return a version-7 UUID, monotonic within this process (RFC 9562, method 1)."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, 0
        else:
            # Same or earlier millisecond: keep order with a 12-bit counter.
            _counter += 1
            if _counter > 0xFFF:
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return uuid.UUID(int=value)


def parse(value: object) -> uuid.UUID:
    """Turn ``value`` into a job id, or raise ``ValueError`` saying what is wrong."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"job id {value!r} is not a UUID; job ids look like {new_id()}") from None


# Hex digits of a job id that pages show: its last group. A UUIDv7 starts with its time,
# so the first digits are alike for every job sent in the same minute; the last 12 are
# random (48 bits), so two jobs on one page do not share them.
SHORT_DIGITS = 12


def short(job_id: object) -> str:
    """A job id as pages show it, where the full id is a link or a copy button away: its
    last :data:`SHORT_DIGITS` hex digits."""
    return str(job_id).replace("-", "")[-SHORT_DIGITS:]
