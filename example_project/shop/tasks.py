"""The shop's background tasks; a djqueue worker runs them."""

from __future__ import annotations

import decimal
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

import djqueue
from example_project.shop import gateway
from example_project.shop.models import Customer, Order, Report

# One loyalty point per whole unit of money spent.
POINTS_PER_UNIT = 1


@djqueue.task
def send_welcome_email(customer_id: int) -> str:
    """Email a new customer and note when; return the address written to."""
    customer = Customer.objects.get(pk=customer_id)
    send_mail(
        subject="Welcome to the shop",
        message=f"Hello {customer.name},\n\nthanks for signing up.",
        from_email=None,
        recipient_list=[customer.email],
    )
    Customer.objects.filter(pk=customer_id).update(welcomed_at=timezone.now())
    return customer.email


@djqueue.task
def send_follow_up_email(customer_id: int) -> str:
    """A second email, sent a while after signing up (the demo schedules it)."""
    customer = Customer.objects.get(pk=customer_id)
    send_mail(
        subject="How is it going?",
        message=f"Hello {customer.name},\n\nanything we can help with?",
        from_email=None,
        recipient_list=[customer.email],
    )
    return customer.email


@djqueue.task(
    bind=True,
    # A gateway timeout is worth another try; anything else fails the job at once.
    autoretry_for=(ConnectionError,),
    max_retries=4,
    retry_backoff=1,
    retry_backoff_max=2,
    retry_jitter=False,
)
def charge_order(self: djqueue.Task[Any, Any], order_id: int) -> dict[str, Any]:
    """Charge an order through the payment gateway and mark it paid."""
    order = Order.objects.get(pk=order_id)
    if order.status == Order.Status.PAID:
        # At-least-once delivery: a job may run twice, so charging must be idempotent.
        return {"order": order.pk, "charge": order.charge_id, "attempts": 0}
    charge_id = gateway.charge(order.pk, order.amount, attempt=self.request.retries)
    order.status = Order.Status.PAID
    order.charge_id = charge_id
    order.save(update_fields=["status", "charge_id"])
    return {"order": order.pk, "charge": charge_id, "attempts": self.request.retries + 1}


@djqueue.task
def build_sales_report() -> dict[str, Any]:
    """Aggregate all orders into a new :class:`Report`; return its figures."""
    totals = Order.objects.aggregate(
        orders=Count("id"),
        paid=Count("id", filter=Q(status=Order.Status.PAID)),
        revenue=Sum("amount", filter=Q(status=Order.Status.PAID)),
    )
    report = Report.objects.create(
        order_count=totals["orders"],
        paid_count=totals["paid"],
        revenue=totals["revenue"] or decimal.Decimal("0"),
        top_customer=_top_customer(),
    )
    return {
        "report": report.pk,
        "orders": report.order_count,
        "paid": report.paid_count,
        "revenue": report.revenue,
    }


def _top_customer() -> str:
    top = (
        Customer.objects.annotate(spent=Sum("orders__amount"))
        .filter(spent__isnull=False)
        .order_by("-spent", "id")
        .first()
    )
    return top.name if top else ""


@djqueue.task
def update_loyalty_points(customer_id: int) -> int:
    """Recompute a customer's points from their orders; return the new total."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        spent = customer.orders.aggregate(total=Sum("amount"))
        points = int(spent["total"] or 0) * POINTS_PER_UNIT
        customer.loyalty_points = points
        customer.save(update_fields=["loyalty_points"])
    return points
