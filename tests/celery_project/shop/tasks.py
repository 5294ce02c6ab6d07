from datetime import date, timedelta
from decimal import Decimal

from celery import chain, chord, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from django.core.mail import send_mail
from django.db.models import Sum
from django.utils import timezone
from proj.celery import app

from shop import gateway
from shop.models import Cart, GatewayCheck, Order, Payment, SalesReport

logger = get_task_logger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(gateway.Timeout,),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=False,
    max_retries=5,
    throws=(gateway.Declined,),
)
def charge(self, order_id):
    order = Order.objects.get(pk=order_id)
    if order.paid:
        return "already paid"
    reference = gateway.charge(order.total, reference=f"order-{order.pk}")
    Payment.objects.create(
        order=order,
        reference=reference,
        amount=order.total,
        task_id=self.request.id,
        attempts=self.request.retries + 1,
    )
    order.paid = True
    order.save(update_fields=["paid"])
    logger.info("Charged order %s (attempt %s)", order.pk, self.request.retries + 1)
    return reference


@app.task
def fulfil(order_id):
    Order.objects.filter(pk=order_id).update(fulfilled_at=timezone.now())
    return order_id


@shared_task(ignore_result=True, rate_limit="20/m")
def send_receipt(order_id):
    order = Order.objects.get(pk=order_id)
    send_mail(
        f"Your order #{order.pk}",
        f"We received your payment of {order.total} EUR. Thank you!",
        None,
        [order.email],
    )


def place_order(order_id):
    """Charge the order, then mark it fulfilled, then send the receipt."""
    return chain(charge.si(order_id), fulfil.si(order_id), send_receipt.si(order_id))()


@shared_task
def day_total(day):
    """The paid sales of one day (an ISO date), as a string to keep the cents."""
    orders = Order.objects.filter(paid=True, created_at__date=day)
    return str(orders.aggregate(total=Sum("total"))["total"] or Decimal("0.00"))


@shared_task
def report_store(totals, first_day):
    total = sum((Decimal(value) for value in totals), Decimal("0.00"))
    SalesReport.objects.update_or_create(
        first_day=first_day, days=len(totals), defaults={"total": total}
    )
    return str(total)


@shared_task
def report_weekly_sales(last_day=None):
    """Add up the seven days before ``last_day`` (yesterday by default), a task per day."""
    last = date.fromisoformat(last_day) if last_day else timezone.localdate() - timedelta(days=1)
    days = [(last - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    return chord(day_total.s(day) for day in days)(report_store.s(days[0])).id


@shared_task(bind=True, soft_time_limit=10 * 60)
def report_daily_sales(self, day=None):
    day = day or (timezone.localdate() - timedelta(days=1)).isoformat()
    total, partial = Decimal("0.00"), False
    try:
        for count, order in enumerate(Order.objects.filter(paid=True, created_at__date=day), 1):
            total += order.total
            self.update_state(state="PROGRESS", meta={"orders": count})
    except SoftTimeLimitExceeded:
        logger.warning("Sales report for %s cut short by its time limit", day)
        partial = True
    SalesReport.objects.update_or_create(
        first_day=day, days=1, defaults={"total": total, "partial": partial}
    )
    return str(total)


@shared_task
def expire_carts(older_than_hours=24):
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    deleted, _ = Cart.objects.filter(updated_at__lt=cutoff).delete()
    return deleted


@shared_task(soft_time_limit=2, time_limit=5)
def check_gateway():
    """Record whether the payment provider answers; a status page that hangs counts as down."""
    try:
        up, note = gateway.status() == "ok", ""
    except SoftTimeLimitExceeded:
        up, note = False, "no answer within 2 seconds"
    except gateway.Timeout as exc:
        up, note = False, str(exc)
    GatewayCheck.objects.create(up=up, note=note)
    return up


@shared_task
def sync_payment_methods():
    """Read the provider's payment methods; a bad page is logged and skipped."""
    methods = []
    for number in range(1, 10):
        try:
            methods.extend(gateway.catalogue_page(number))
        except Exception:
            logger.exception("Page %s of the payment methods failed", number)
    return methods
