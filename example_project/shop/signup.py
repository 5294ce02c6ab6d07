"""Signing a customer up: the row and its welcome email commit together."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from example_project.shop import tasks
from example_project.shop.models import Customer


def register_customer(name: str, email: str) -> tuple[Customer, Any]:
    """Create (or find) the customer and enqueue the welcome email once that commits.

    Returns the customer and the email job's ``AsyncResult``. Had the transaction rolled
    back, no email would be sent; with ``delay_on_commit`` the worker also never sees a
    job for a customer row that is not committed yet.
    """
    with transaction.atomic():
        customer, _ = Customer.objects.get_or_create(email=email, defaults={"name": name})
        result = tasks.send_welcome_email.delay_on_commit(customer.pk)
    return customer, result
