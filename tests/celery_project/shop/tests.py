from datetime import timedelta
from decimal import Decimal
from unittest import mock

from celery import group
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from shop import gateway, tasks
from shop.models import Cart, GatewayCheck, Order, Payment, SalesReport


class ChargeTests(TestCase):
    def setUp(self):
        self.order = Order.objects.create(email="ann@example.com", total=Decimal("12.50"))

    @mock.patch("shop.gateway.charge", return_value="pay_1")
    def test_charges_the_order(self, charge):
        result = tasks.charge.delay(self.order.pk)

        self.assertTrue(result.successful())
        self.assertEqual(result.get(), "pay_1")
        charge.assert_called_once_with(Decimal("12.50"), reference=f"order-{self.order.pk}")
        payment = Payment.objects.get(order=self.order)
        self.assertEqual(payment.task_id, result.id)
        self.assertEqual(payment.attempts, 1)
        self.order.refresh_from_db()
        self.assertTrue(self.order.paid)

    @mock.patch("shop.gateway.charge", side_effect=[gateway.Timeout("busy"), "pay_2"])
    def test_retries_when_the_gateway_is_busy(self, charge):
        result = tasks.charge.delay(self.order.pk)

        self.assertEqual(result.get(), "pay_2")
        self.assertEqual(charge.call_count, 2)
        self.assertEqual(Payment.objects.get(order=self.order).attempts, 2)

    @mock.patch("shop.gateway.charge", side_effect=gateway.Timeout("down"))
    def test_gives_up_after_five_retries(self, charge):
        with self.assertRaises(gateway.Timeout):
            tasks.charge.delay(self.order.pk)
        self.assertEqual(charge.call_count, 6)
        self.assertFalse(Payment.objects.exists())

    @mock.patch("shop.gateway.charge", side_effect=gateway.Declined("card expired"))
    def test_a_declined_card_is_not_retried(self, charge):
        with self.assertRaises(gateway.Declined):
            tasks.charge.apply_async((self.order.pk,))
        self.assertEqual(charge.call_count, 1)

    def test_an_order_already_paid_is_not_charged_again(self):
        Order.objects.filter(pk=self.order.pk).update(paid=True)
        with mock.patch("shop.gateway.charge") as charge:
            self.assertEqual(tasks.charge.apply(args=(self.order.pk,)).get(), "already paid")
        charge.assert_not_called()


class PlaceOrderTests(TestCase):
    @mock.patch("shop.gateway.charge", return_value="pay_3")
    def test_charges_fulfils_and_sends_the_receipt(self, charge):
        order = Order.objects.create(email="bob@example.com", total=Decimal("40.00"))

        tasks.place_order(order.pk)

        order.refresh_from_db()
        self.assertTrue(order.paid)
        self.assertIsNotNone(order.fulfilled_at)
        self.assertEqual(len(mail.outbox), 1)
        self.assertEqual(mail.outbox[0].to, ["bob@example.com"])
        self.assertIn("40.00 EUR", mail.outbox[0].body)

    @mock.patch("shop.gateway.charge", side_effect=gateway.Declined("no funds"))
    def test_a_declined_charge_stops_the_chain(self, charge):
        order = Order.objects.create(email="eve@example.com", total=Decimal("9.99"))

        with self.assertRaises(gateway.Declined):
            tasks.place_order(order.pk)

        order.refresh_from_db()
        self.assertIsNone(order.fulfilled_at)
        self.assertEqual(mail.outbox, [])

    def test_receipts_for_many_orders(self):
        orders = [Order.objects.create(email=f"{n}@example.com", total=1) for n in range(3)]

        group(tasks.send_receipt.s(order.pk) for order in orders).apply_async()

        self.assertEqual(sorted(m.to[0] for m in mail.outbox), [o.email for o in orders])


class ReportTests(TestCase):
    def test_weekly_report_adds_up_the_days(self):
        today = timezone.localdate()
        for total in ("10.00", "2.50"):
            Order.objects.create(email="a@example.com", total=Decimal(total), paid=True)
        Order.objects.create(email="b@example.com", total=Decimal("99.00"), paid=False)

        tasks.report_weekly_sales.delay(today.isoformat())

        report = SalesReport.objects.get(days=7)
        self.assertEqual(report.total, Decimal("12.50"))
        self.assertEqual(report.first_day, today - timedelta(days=6))

    def test_day_total(self):
        result = tasks.day_total.s(timezone.localdate().isoformat()).apply()
        self.assertEqual(result.get(), "0.00")
        self.assertEqual(result.state, "SUCCESS")

    def test_expire_carts(self):
        now = timezone.now()
        Cart.objects.create(updated_at=now - timedelta(hours=50))
        Cart.objects.create(updated_at=now - timedelta(hours=1))

        self.assertEqual(tasks.expire_carts.delay(older_than_hours=48).get(), 1)
        self.assertEqual(Cart.objects.count(), 1)


class GatewayCheckTests(TestCase):
    @mock.patch("shop.gateway.status", return_value="ok")
    def test_up(self, status):
        self.assertIs(tasks.check_gateway.delay().get(), True)
        self.assertTrue(GatewayCheck.objects.get().up)

    @mock.patch("shop.gateway.status", side_effect=gateway.Timeout("/status answered 503"))
    def test_down(self, status):
        self.assertIs(tasks.check_gateway.delay().get(), False)
        self.assertEqual(GatewayCheck.objects.get().note, "/status answered 503")


class DebugTaskTests(TestCase):
    def test_debug_task_prints_the_request(self):
        from proj.celery import debug_task

        with mock.patch("builtins.print") as printed:
            debug_task.delay()
        self.assertIn("Request:", printed.call_args.args[0])
