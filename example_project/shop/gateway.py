"""A stand-in for a remote payment service that drops the first calls for an order.

Real gateways time out now and then; this one does so on purpose, so that the demo
shows a task being retried and then succeeding.
"""

from __future__ import annotations

import decimal
import hashlib

# Calls for one order that fail before the gateway answers.
FAILING_CALLS = 2


def charge(order_id: int, amount: decimal.Decimal, attempt: int) -> str:
    """Charge ``amount`` for ``order_id``; return the charge id or raise ConnectionError.

    ``attempt`` counts from 0; the first ``FAILING_CALLS`` attempts time out.
    """
    if attempt < FAILING_CALLS:
        raise ConnectionError(f"payment gateway timed out (attempt {attempt + 1})")
    digest = hashlib.sha256(f"{order_id}:{amount}".encode()).hexdigest()
    return f"ch_{digest[:16]}"
